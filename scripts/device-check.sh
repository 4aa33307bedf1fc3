#!/usr/bin/env bash
# One run on a lent GPU machine (x86-64, NVIDIA driver, PyTorch, no npm registry), from the repository
# root, with what `node scripts/device-bundle.mjs` packs into .devbench/ (the bench and CLI bundles,
# a Node binary, the `webgpu` package, the golden checker) and, in .gl/, the Debian packages of
# Vulkan's loader and the GL dispatch libraries the NVIDIA Vulkan driver loads through
# libGLX_nvidia (the loader alone finds no driver; the device tool's README says how to download
# them). Writes its log and result files under $1:
#   1. doctor: the adapter, its limits and features, the kernels the ops pick;
#   2. every model component against the golden fixtures (`forward --capture`, check_against.py);
#   3. the bench suites given in $2 (default "ops models e2e warmup") at full size;
#   4. torch.matmul and SDPA on the same GPU (bench/torch_reference.py).
# The copy sent with node.xz and webgpu.tar.xz is close to the device tool's 64 MiB: if it is
# refused, untrack test/fixtures/ops and test/fixtures/rng for the run (nothing here reads them).
set -uo pipefail
out=${1:?usage: device-check.sh OUT_DIR [SUITES]}
suites=${2:-ops models e2e warmup}
mkdir -p "$out"

for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg} && mkdir -p "$XDG_RUNTIME_DIR"
xz -dc .devbench/node.xz >/tmp/node && chmod +x /tmp/node
mkdir -p node_modules && tar -xJf .devbench/webgpu.tar.xz -C node_modules
tar -xJf .devbench/bundles.tar.xz -C .devbench
node() { /tmp/node "$@"; }

echo "== doctor"
node .devbench/cli.mjs doctor

echo "== golden: every component in f32 against test/fixtures"
golden=/tmp/golden && status=0
forward() { # component, model folder, io file, candidate folder
  mkdir -p "$golden/$4/io"
  node .devbench/cli.mjs forward "$1" --model "test/fixtures/models/$2" --inputs "test/fixtures/io/$3.safetensors" \
    --out "$golden/$4/io/$3.safetensors" --capture || status=1
}
forward prior prior prior models
forward decoder decoder decoder models
forward text_encoder text_encoder_prior text_encoder_prior models
forward text_encoder text_encoder_decoder text_encoder_decoder models
# The three VQGAN passes write the same golden file's tensors: one candidate folder each.
forward vqgan.encode vqgan vqgan encode
forward vqgan.quantize vqgan vqgan quantize
forward vqgan.decode vqgan vqgan decode
for candidate in models encode quantize decode; do
  python3 .devbench/tools/check_against.py "$golden/$candidate" --golden test/fixtures || status=1
done
echo "golden status: $status"

echo "== bench: $suites"
# shellcheck disable=SC2086
node .devbench/bench.mjs $suites --full --dtype f32
cp .devbench/results/*.jsonl "$out/"

echo "== torch reference"
python3 bench/torch_reference.py "$out/torch.jsonl"
