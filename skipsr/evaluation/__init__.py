"""The evaluation stack (docs/design.md sections 8, 9): metrics (JOD, PSNR-Y, SSIM-Y, LPIPS, DISTS,
E*warp), their offline weights, one measured run, the validation set and command, the speed
protocol and the metrics store. It builds on the core package; the core never imports it."""
