#!/usr/bin/env bash
# Y-PSNR / SSIM of every CPU precision against fp32, on Set5 and Set14 at x2 and x3, with the
# official weights and the embedded models (issue: within 0.02 dB and 0.0005 SSIM).
# usage: tools/precision_quality.sh [RT4KSR_BINARY] [SHARED_DIR]
set -euo pipefail
bin=${1:-target/release/rt4ksr}
shared=${2:-../shared}
printf '%-9s %-6s %-5s %-9s %9s %9s %9s %9s\n' model set scale precision psnr_y ssim_y d_psnr d_ssim
for scale in 2 3; do
  for model in official embedded; do
    weights=()
    [ "$model" = official ] && weights=(--weights "$shared/models/official/rt4ksr_x$scale.pth")
    for set in set5 set14; do
      base=""
      for precision in fp32 bf16; do
        line=$("$bin" eval --data "$shared/data/$set" -s "$scale" "${weights[@]}" --precision "$precision" --json |
          python3 -c 'import json,sys; m=json.load(sys.stdin)["mean_model"]; print(m["psnr_y"], m["ssim_y"])')
        read -r psnr ssim <<< "$line"
        [ -z "$base" ] && base="$psnr $ssim"
        read -r bp bs <<< "$base"
        python3 -c "import sys; p,s,bp,bs=map(float,sys.argv[1:5]); print(f'%-9s %-6s x%-4s %-9s %9.3f %9.4f %+9.4f %+9.5f' % ('$model','$set','$scale','$precision',p,s,p-bp,s-bs))" "$psnr" "$ssim" "$bp" "$bs"
      done
    done
  done
done
