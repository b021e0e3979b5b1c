"""Upscales a folder of images over a Dask cluster, each worker running the rt4ksr package.

    pip install . "dask[distributed]"
    python examples/dask_upscale.py PHOTOS OUT -s 2                      # a local cluster, 2 workers
    python examples/dask_upscale.py PHOTOS OUT -s 2 --scheduler tcp://head:8786   # a real one

The folder is listed here (recursively, the extensions `rt4ksr upscale` reads), split into
batches, and each batch goes to a worker, which loads the model once (kept on the worker for
later batches) and writes each output as `rt4ksr upscale` does: same format, alpha, 16-bit,
ICC and EXIF, written atomically, so an interrupted run can be started again with
--skip-existing. The results come back in the folder's order; the last line is the throughput.
Every worker must see INPUT and OUTPUT at the same paths (a shared file system); see
docs/scale-out.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def batches(items, count):
    """`items` in `count` runs of consecutive items, as even as they come."""
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


def upscale_batch(pairs, scale, weights, precision, overwrite, skip_existing):
    """Runs on a worker: upscales each (src, dst) pair; returns (src, dst, seconds or None,
    worker address)."""
    import rt4ksr

    try:
        from distributed import get_worker

        holder = get_worker()
        name = holder.address
    except (ImportError, ValueError):  # not on a Dask worker (a plain call)
        holder, name = sys.modules[__name__], "local"
    key = (scale, weights, precision)
    cache = holder.__dict__.setdefault("_rt4ksr_upscalers", {})
    if key not in cache:
        cache[key] = rt4ksr.Upscaler(scale=scale, weights=weights, precision=precision)
    up = cache[key]
    done = []
    for src, dst in pairs:
        if skip_existing and os.path.exists(dst):
            done.append((src, dst, None, name))
            continue
        start = time.perf_counter()
        up.upscale_file(src, dst, overwrite=overwrite)
        done.append((src, dst, time.perf_counter() - start, name))
    return done


def run(client, input_dir, output_dir, scale, weights=None, precision="auto", overwrite=False, skip_existing=False,
        batches_per_worker=4):
    """Upscales every image under `input_dir` into `output_dir` (same relative paths) on the
    cluster of `client`; returns the (src, dst, seconds, worker) of each file in the folder's order."""
    files = list_images(input_dir)
    if not files:
        raise ValueError(f"{input_dir}: no image files (png, jpg, webp, bmp, tif)")
    pairs = [(str(f), str(Path(output_dir) / f.relative_to(input_dir))) for f in files]
    workers = max(1, len(client.scheduler_info()["workers"]))
    parts = batches(pairs, workers * batches_per_worker)
    futures = client.map(
        upscale_batch,
        parts,
        scale=scale,
        weights=weights,
        precision=precision,
        overwrite=overwrite,
        skip_existing=skip_existing,
        pure=False,
    )
    # gather keeps the order of `futures`, which is the folder's order.
    return [item for part in client.gather(futures) for item in part]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("-s", "--scale", type=int, default=None)
    p.add_argument("--weights", default=None)
    p.add_argument("--precision", default="auto")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--skip-existing", action="store_true")
    p.add_argument("--scheduler", help="address of a running Dask scheduler; default: a local cluster")
    p.add_argument("--workers", type=int, default=2, help="local cluster: worker processes")
    p.add_argument("--threads-per-worker", type=int, default=1,
                   help="local cluster: the engine's threads in each worker (RAYON_NUM_THREADS)")
    a = p.parse_args()
    from distributed import Client, LocalCluster

    if a.scheduler:
        client, cluster = Client(a.scheduler), None
    else:
        # Each worker process's engine takes its threads from RAYON_NUM_THREADS, inherited.
        os.environ["RAYON_NUM_THREADS"] = str(a.threads_per_worker)
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        start = time.perf_counter()
        results = run(client, a.input, a.output, a.scale, a.weights, a.precision, a.overwrite, a.skip_existing)
        seconds = time.perf_counter() - start
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    written = [r for r in results if r[2] is not None]
    for src, dst, took, _ in results:
        print(f"{src} -> {dst}" + (f" ({took:.2f} s)" if took is not None else " (exists, skipped)"))
    workers = a.workers if a.scheduler is None else "cluster"
    print(f"{len(written)} images in {seconds:.1f} s: {len(written) / seconds:.2f} images/s ({workers} workers)")


if __name__ == "__main__":
    main()
