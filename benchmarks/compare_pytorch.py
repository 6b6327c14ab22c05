#!/usr/bin/python3
"""PyTorch baseline for pcnas: training and evaluation throughput of one path of the `fmnist` space.

The model is built layer for layer as pcnas builds it (see DESIGN.md, "The workloads we can run
here"), so that images/s can be compared with `pcnas bench` at the same batch size and
thread count. Inputs are synthetic tensors: data loading is not measured, on either side.

The PyTorch side is the fastest a competent user would write for the same computation: both
memory layouts are measured and the faster one counts; the head pools with `x.mean((2, 3))`
(AdaptiveAvgPool2d + Flatten computes the same and measured about 5 % slower per training step
on CPU with torch 1.13); SGD uses the multi-tensor (foreach) update where torch has it. `--gemm`
adds the machine's GEMM throughput (torch.mm, same threads) at the 1x1-convolution shapes of the
path and at a large square size, to read the model's GFLOP/s against.

Which BLAS torch loads matters as much as any of that: Debian's python3-torch is built against
the generic libblas.so.3, which is the netlib reference implementation (a few GFLOP/s) unless an
optimised one is installed; some of torch's CPU convolutions and its linear layers go through it.
The result records torch's BLAS and warns when torch.mm is that slow; install Debian's
libopenblas0-pthread (or put its libblas.so.3 first on LD_LIBRARY_PATH, with
OPENBLAS_NUM_THREADS set to --threads) for the fastest PyTorch.

Run it through the `compare_pytorch` wrapper beside it, which picks Debian's /usr/bin/python3
(the interpreter that has python3-torch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

CHOICES = ["k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6"]
ZERO = "zero"


@dataclass(frozen=True)
class Layer:
    cin: int
    cout: int
    stride: int

    @property
    def skippable(self) -> bool:
        # `zero` leaves only the identity shortcut, which needs the shape to pass through unchanged.
        return self.stride == 1 and self.cin == self.cout

    def choices(self) -> list[str]:
        return CHOICES + ([ZERO] if self.skippable else [])

    def describe(self) -> str:
        return f"{self.cin}->{self.cout}, stride {self.stride}"


# The fmnist space: input 1x28x28, stem conv3x3 (16), eight searchable layers, head conv1x1 (256).
STEM_CHANNELS = 16
HEAD_CHANNELS = 256
NUM_CLASSES = 10
LAYERS = [
    Layer(16, 24, 2),
    Layer(24, 24, 1),
    Layer(24, 40, 2),
    Layer(40, 40, 1),
    Layer(40, 40, 1),
    Layer(40, 80, 1),
    Layer(80, 80, 1),
    Layer(80, 80, 1),
]


def parse_arch(text: str, seed: int) -> list[str]:
    """An architecture string, or one of the shortcuts smallest / largest / random."""
    shortcut = text.strip().lower()
    if shortcut == "largest":
        return ["k7e6"] * len(LAYERS)
    if shortcut == "smallest":
        return [ZERO if layer.skippable else "k3e3" for layer in LAYERS]
    if shortcut == "random":
        rng = random.Random(seed)
        return [rng.choice(layer.choices()) for layer in LAYERS]
    tokens = text.split()
    if len(tokens) != len(LAYERS):
        raise ValueError(
            f"--arch needs {len(LAYERS)} tokens for the fmnist space (or smallest|largest|random), "
            f"got {len(tokens)}: {text!r}"
        )
    for index, (token, layer) in enumerate(zip(tokens, LAYERS)):
        if token not in layer.choices():
            raise ValueError(
                f"--arch: layer {index} ({layer.describe()}) cannot be {token!r}; "
                f"valid choices: {' '.join(layer.choices())}"
            )
    return tokens


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu6: bool = True) -> list[nn.Module]:
    modules: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu6:
        modules.append(nn.ReLU6(inplace=True))
    return modules


class MBConv(nn.Module):
    """1x1 expansion (omitted when e = 1), kxk depthwise, 1x1 projection; identity when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        modules: list[nn.Module] = []
        if expansion != 1:
            modules += conv_bn(cin, hidden, 1)
        modules += conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        modules += conv_bn(hidden, cout, 1, relu6=False)
        self.body = nn.Sequential(*modules)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class GlobalMean(nn.Module):
    """Global average pooling to [N, C]: AdaptiveAvgPool2d(1) + Flatten, the fast way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


def build_model(arch: list[str]) -> nn.Module:
    modules: list[nn.Module] = conv_bn(1, STEM_CHANNELS, 3)
    for token, layer in zip(arch, LAYERS):
        if token == ZERO:
            modules.append(nn.Identity())
        else:
            kernel, expansion = int(token[1]), int(token[3])
            modules.append(MBConv(layer.cin, layer.cout, kernel, expansion, layer.stride))
    modules += conv_bn(LAYERS[-1].cout, HEAD_CHANNELS, 1)
    modules += [GlobalMean(), nn.Linear(HEAD_CHANNELS, NUM_CLASSES)]
    return nn.Sequential(*modules)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    # Weight decay on convolution and linear weights only, not on BN parameters or biases.
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": 4e-5}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True, foreach=True)
    except TypeError:  # a torch without the multi-tensor update
        return torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True)


def arch_macs(arch: list[str]) -> int:
    """Multiply-adds of one image's forward pass (convolutions and the classifier)."""
    h = w = 28
    macs = h * w * STEM_CHANNELS * 9
    for token, layer in zip(arch, LAYERS):
        if token == ZERO:
            continue
        kernel, expansion = int(token[1]), int(token[3])
        hidden = layer.cin * expansion
        if expansion != 1:
            macs += h * w * layer.cin * hidden
        h, w = (h + layer.stride - 1) // layer.stride, (w + layer.stride - 1) // layer.stride
        macs += h * w * hidden * kernel * kernel + h * w * hidden * layer.cout
    return macs + h * w * LAYERS[-1].cout * HEAD_CHANNELS + HEAD_CHANNELS * NUM_CLASSES


def gemm_shapes(arch: list[str], batch: int) -> list[tuple[int, int, int]]:
    """(rows, in, out) of the path's 1x1 convolutions (forward), each shape once, plus a square."""
    h = w = 28
    shapes = []
    for token, layer in zip(arch, LAYERS):
        if token == ZERO:
            continue
        expansion = int(token[3])
        hidden = layer.cin * expansion
        if expansion != 1:
            shapes.append((batch * h * w, layer.cin, hidden))
        h, w = (h + layer.stride - 1) // layer.stride, (w + layer.stride - 1) // layer.stride
        shapes.append((batch * h * w, hidden, layer.cout))
    shapes.append((batch * h * w, LAYERS[-1].cout, HEAD_CHANNELS))
    return list(dict.fromkeys(shapes)) + [(2048, 2048, 2048)]


def measure_gemm(shapes: list[tuple[int, int, int]], repeats: int) -> list[dict]:
    """GFLOP/s of torch.mm (float32, the threads set) per shape: median of `repeats` timings."""
    out = []
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        c = torch.empty(m, n)
        flops = 2.0 * m * k * n
        inner = max(1, int(2e9 / flops))  # about 2 GFLOP per timing
        times = timed(lambda: torch.mm(a, b, out=c), inner, 2, repeats)
        out.append({"m": m, "k": k, "n": n, "gflops": flops / statistics.median(times) / 1e9})
    return out


def timed(step, steps: int, warmup: int, repeats: int, sync=lambda: None) -> list[float]:
    """Seconds per step of each of `repeats` runs of `steps` steps, after `warmup` steps.

    `sync` waits for the device (CUDA runs asynchronously): once before each run and once at
    its end, so that a run's time holds all of its work and nothing of the previous run's."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - start) / steps)
    return times


def measure_layout(arch: list[str], layout: str, args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    device = torch.device(args.device)
    model = build_model(arch).to(device=device, memory_format=fmt)
    images = torch.randn(args.batch, 1, 28, 28).to(device).contiguous(memory_format=fmt)
    labels = torch.randint(0, NUM_CLASSES, (args.batch,)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = make_optimizer(model)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        model(images)

    model.train()
    train_times = timed(train_step, args.steps, args.warmup, args.repeats, sync)
    model.eval()
    with torch.inference_mode():
        eval_times = timed(eval_step, args.steps, args.warmup, args.repeats, sync)
    train_s, eval_s = statistics.median(train_times), statistics.median(eval_times)
    return {
        "train_images_per_s": args.batch / train_s,
        "eval_images_per_s": args.batch / eval_s,
        "train_ms_per_batch": 1e3 * train_s,
        "eval_ms_per_batch": 1e3 * eval_s,
        # The spread shows how much other load on the machine moved the repeats.
        "train_ms_per_batch_min_max": [1e3 * min(train_times), 1e3 * max(train_times)],
        "eval_ms_per_batch_min_max": [1e3 * min(eval_times), 1e3 * max(eval_times)],
    }


def run_pcnas(path: str, arch: list[str], args: argparse.Namespace) -> tuple[dict | None, str | None]:
    """Runs `pcnas bench`; returns (its JSON, None) or (None, why it could not be used)."""
    if not os.path.exists(path):
        return None, f"pcnas binary not found: {path}"
    if not os.access(path, os.X_OK):
        return None, f"pcnas binary is not executable: {path}"
    command = [
        path, "bench", "fmnist",
        "--arch", " ".join(arch),
        "--batch", str(args.batch),
        "--threads", str(args.threads),
        "--steps", str(args.steps),
        "--json",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.pcnas_timeout)
    except subprocess.TimeoutExpired:
        return None, f"pcnas bench did not finish within {args.pcnas_timeout} s: {' '.join(command)}"
    except OSError as error:
        return None, f"cannot run {path}: {error}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        said = " | ".join(tail) if tail else "(it printed nothing)"
        return None, f"pcnas bench failed with exit code {done.returncode}: {said}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        return None, "pcnas bench printed nothing; expected a JSON object on its last line"
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        return None, f"pcnas bench's last line is not JSON ({error}): {lines[-1][:200]!r}"
    missing = [key for key in ("train_images_per_s", "eval_images_per_s") if key not in result]
    if missing:
        return None, f"pcnas bench's JSON lacks {', '.join(missing)}: {lines[-1][:200]!r}"
    return result, None


def main() -> int:
    parser = argparse.ArgumentParser(
        description="PyTorch training/eval throughput of one fmnist architecture, NCHW and channels-last; "
        "optionally side by side with `pcnas bench`."
    )
    parser.add_argument("--arch", default="largest",
                        help='8 tokens such as "k3e6 k5e3 zero ...", or smallest | largest | random')
    parser.add_argument("--seed", type=int, default=0, help="seed of --arch random and of the weights")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where PyTorch runs (cuda: the first GPU; compare with a CUDA build of pcnas)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    parser.add_argument("--layouts", default="nchw,channels_last",
                        help="comma-separated subset of nchw,channels_last")
    parser.add_argument("--pcnas", metavar="PATH", help="pcnas binary to run `bench fmnist` with the same settings")
    parser.add_argument("--pcnas-timeout", type=float, default=600.0, help="seconds before pcnas bench is abandoned")
    parser.add_argument("--gemm", action="store_true",
                        help="also measure torch.mm GFLOP/s at the path's 1x1-convolution shapes and a square one")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout; the table goes to stderr")
    args = parser.parse_args()

    for name in ("batch", "threads", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")
    layouts = [layout.strip() for layout in args.layouts.split(",") if layout.strip()]
    unknown = [layout for layout in layouts if layout not in ("nchw", "channels_last")]
    if unknown or not layouts:
        parser.error(f"--layouts: unknown {unknown}; valid: nchw, channels_last")
    try:
        arch = parse_arch(args.arch, args.seed)
    except ValueError as error:
        parser.error(str(error))

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed by an earlier parallel call; intra-op threads are what matter here

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch has no usable CUDA device")

    load_before = os.getloadavg()[0]
    per_layout = {layout: measure_layout(arch, layout, args) for layout in layouts}
    best_train = max(layouts, key=lambda layout: per_layout[layout]["train_images_per_s"])
    best_eval = max(layouts, key=lambda layout: per_layout[layout]["eval_images_per_s"])
    params = sum(p.numel() for p in build_model(arch).parameters())
    macs = arch_macs(arch)
    blas = next((item.split("=", 1)[1] for item in torch.__config__.show().replace(",", " ").split()
                 if item.startswith("BLAS_INFO=")), "unknown")
    probe = measure_gemm([(512, 512, 512)], 3)[0]["gflops"]
    gemm = measure_gemm(gemm_shapes(arch, args.batch), args.repeats) if args.gemm else None

    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "space": "fmnist",
        "arch": " ".join(arch),
        "arch_requested": args.arch,
        "params": params,
        "batch": args.batch,
        "threads": args.threads,
        "device": args.device if args.device == "cpu" else f"cuda ({torch.cuda.get_device_name(0)})",
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "train_images_per_s": per_layout[best_train]["train_images_per_s"],
        "train_layout": best_train,
        "eval_images_per_s": per_layout[best_eval]["eval_images_per_s"],
        "eval_layout": best_eval,
        "layouts": per_layout,
        "macs": macs,
        # A training step counted as three forward passes (forward, and the two gradients).
        "train_gflops": 6.0 * macs * per_layout[best_train]["train_images_per_s"] / 1e9,
        "eval_gflops": 2.0 * macs * per_layout[best_eval]["eval_images_per_s"] / 1e9,
        "gemm": gemm,
        "blas": {"info": blas, "mm_512_gflops": probe},
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "cpu_count": os.cpu_count(),
    }

    pcnas_error = None
    if args.pcnas:
        pcnas_result, pcnas_error = run_pcnas(args.pcnas, arch, args)
        if pcnas_result is not None:
            result["pcnas"] = pcnas_result
            result["ratio_pcnas_over_pytorch"] = {
                "train": pcnas_result["train_images_per_s"] / result["train_images_per_s"],
                "eval": pcnas_result["eval_images_per_s"] / result["eval_images_per_s"],
            }
        else:
            result["pcnas_error"] = pcnas_error

    table = sys.stderr if args.json else sys.stdout
    print(f"fmnist  arch: {result['arch']}  ({params:,} parameters)", file=table)
    print(f"PyTorch {torch.__version__} on {result['device']}, batch {args.batch}, {args.threads} thread(s), median of {args.repeats} x "
          f"{args.steps} steps after {args.warmup} warm-up; synthetic inputs", file=table)
    print(f"1-min load average {load_before:.2f} before, {result['load_average_1min']['after']:.2f} after, "
          f"on {os.cpu_count()} CPUs (other work on the machine lowers these numbers)", file=table)
    print(f"{'':22}{'train img/s':>14}{'eval img/s':>14}{'train ms/batch':>16}{'eval ms/batch':>15}", file=table)
    for layout in layouts:
        row = per_layout[layout]
        print(f"{'pytorch ' + layout:22}{row['train_images_per_s']:14.1f}{row['eval_images_per_s']:14.1f}"
              f"{row['train_ms_per_batch']:16.2f}{row['eval_ms_per_batch']:15.2f}", file=table)
    print(f"{'pytorch GFLOP/s':22}{result['train_gflops']:14.1f}{result['eval_gflops']:14.1f}"
          f"   ({macs / 1e6:.1f} M multiply-adds per image, best layouts)", file=table)
    print(f"torch BLAS: {blas}, torch.mm 512^3 at {probe:.1f} GFLOP/s", file=table)
    if probe < 10:
        print("WARNING: torch's BLAS is slow (the netlib reference libblas?): this is not the fastest PyTorch; "
              "see the note at the top of compare_pytorch.py", file=table)
    if gemm:
        print("torch.mm GFLOP/s at the path's 1x1 shapes (rows x in -> out) and a square one:", file=table)
        for g in gemm:
            print(f"  {g['m']:7d} x {g['k']:4d} -> {g['n']:4d}  {g['gflops']:8.1f}", file=table)
    if "pcnas" in result:
        p = result["pcnas"]
        ratio = result["ratio_pcnas_over_pytorch"]
        print(f"{'pcnas':22}{p['train_images_per_s']:14.1f}{p['eval_images_per_s']:14.1f}", file=table)
        print(f"{'pcnas/pytorch':22}{ratio['train']:14.2f}{ratio['eval']:14.2f}"
              f"   (against pytorch {best_train} for train, {best_eval} for eval)", file=table)
    elif pcnas_error is not None:
        print(f"pcnas: NOT MEASURED: {pcnas_error}", file=table)

    if args.json:
        print(json.dumps(result))
    return 3 if pcnas_error is not None else 0


if __name__ == "__main__":
    sys.exit(main())
