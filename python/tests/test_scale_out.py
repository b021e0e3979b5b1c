"""examples/dask_upscale.py on a local Dask cluster of two worker processes."""

import importlib
import os
from pathlib import Path

import pytest

import rt4ksr

from test_rt4ksr import test_image, write_png

distributed = pytest.importorskip("distributed", reason="SKIP: dask[distributed] is not installed")

ROOT = Path(__file__).resolve().parents[2]


def load_example(monkeypatch):
    # The worker processes import the example as this process does, from examples/.
    examples = str(ROOT / "examples")
    monkeypatch.syspath_prepend(examples)
    monkeypatch.setenv("PYTHONPATH", examples + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return importlib.import_module("dask_upscale")


def test_a_folder_spread_over_two_workers_comes_back_whole_and_in_order(tmp_path, monkeypatch):
    example = load_example(monkeypatch)
    src = tmp_path / "in"
    names = [f"{i:02d}.png" for i in range(8)] + ["sub/a.png", "sub/b.png"]
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        write_png(src / name, test_image(h=20 + i, w=24, seed=i))
    out = tmp_path / "out"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        results = example.run(client, src, out, 2, batches_per_worker=2)
        assert [Path(r[0]).relative_to(src).as_posix() for r in results] == sorted(names)
        assert len({r[3] for r in results}) == 2, "both workers took batches"
        # A second run with --skip-existing writes nothing.
        again = example.run(client, src, out, 2, skip_existing=True)
        assert all(r[2] is None for r in again)
        with pytest.raises(FileExistsError):
            example.run(client, src, out, 2)
    up = rt4ksr.Upscaler(scale=2)
    for name in names:
        local = tmp_path / "local" / name
        up.upscale_file(src / name, local)
        assert (out / name).read_bytes() == local.read_bytes(), name
    with pytest.raises(ValueError, match="no image files"):
        example.run(_NoCluster(), tmp_path / "nothing", out, 2)


class _NoCluster:
    """Never reached: an empty folder fails before the cluster is asked anything."""

    def scheduler_info(self):
        raise AssertionError("the cluster was asked")


def test_batches_keep_order_and_cover_everything(monkeypatch):
    example = load_example(monkeypatch)
    items = list(range(10))
    parts = example.batches(items, 4)
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    assert [i for p in parts for i in p] == items
    assert example.batches(items[:2], 4) == [[0], [1]]
