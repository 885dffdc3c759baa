"""B6: image variants on 50 × 12 MP JPEGs (320 px + 1080 px WebP), against a bare loop.

``python -m bench.b6_images [--files 50] [--reps 3]`` (dry run: ``--files 4 --reps 1``).

- **groundwork**: the image processor as the media job runs it
  (``backend.media.images.process``): magic-number and polyglot checks, decode under the
  pixel limit in draft mode, auto-orient, sRGB, metadata dropped, both presets as WebP,
  the blurhash, and each variant written through the local store.
- **baseline (Pillow)**: a bare loop of the same library making the same two files
  (open, draft, orient, thumbnail, save WebP at the same quality and method).
- **diagnostic (pyvips)**: the same two files with pyvips' ``thumbnail`` (shrink-on-load),
  when pyvips is installed; it tells whether the other library would be worth it.

Each variant runs in a fresh subprocess over the same files (peak RSS: the child's
own VmHWM), alternating order, ``--reps`` times; the table reports medians.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import result_row, table_header, write_results

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "instance" / "bench-b6"
WIDTH, HEIGHT = 4000, 3000  # 12 MP
PRESETS = (("thumb_320", 320, 80), ("display_1080", 1080, 82))


def make_corpus(count: int) -> list[Path]:
    """``count`` photo-like 12 MP JPEGs with EXIF (noise over gradients), made once and kept."""
    from PIL import Image, ImageDraw

    CORPUS.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = CORPUS / f"photo-{i:03d}.jpg"
        files.append(path)
        if path.exists():
            continue
        small = Image.linear_gradient("L").resize((WIDTH // 4, HEIGHT // 4)).convert("RGB")
        draw = ImageDraw.Draw(small)
        for k in range(12):
            draw.ellipse((k * 80 + i % 50, k * 50, k * 80 + 300, k * 50 + 200), fill=((k * 40 + i) % 256, 90, 200))
        image = small.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        noise = Image.effect_noise((WIDTH, HEIGHT), 24).convert("RGB")
        image = Image.blend(image, noise, 0.15)
        exif = Image.Exif()
        exif[0x0112] = 1 + (i % 2) * 5  # every other one stored sideways
        exif[0x010F] = "Bench camera"
        image.save(path, "JPEG", quality=90, exif=exif)
    return files


def run_groundwork(files: list[Path], out: Path) -> None:
    from backend.media.images import process
    from backend.media.policies import DEFAULT_POLICIES
    from backend.media.processing import ProcessingContext
    from backend.media.storage.local import LocalStorage

    store = LocalStorage(str(out), base_url="http://bench", secret="bench")
    for i, path in enumerate(files):
        work = out / f"work-{i}"
        work.mkdir()
        ctx = ProcessingContext(media_id=None, kind="photo", policy=DEFAULT_POLICIES["photo"],  # type: ignore[arg-type]
                                declared_type="image/jpeg", detected_type="image/jpeg", source_path=path,
                                work_dir=work, key_prefix=f"media/bench-{i}/", storage=store,
                                progress=lambda percent: None)
        process(ctx)


def run_bare(files: list[Path], out: Path) -> None:
    from PIL import Image, ImageOps

    for i, path in enumerate(files):
        with Image.open(path) as image:
            image.draft("RGB", (1080, 1080))
            upright = ImageOps.exif_transpose(image).convert("RGB")
        for name, size, quality in PRESETS:
            variant = upright.copy()
            variant.thumbnail((size, size), Image.Resampling.LANCZOS)
            variant.save(out / f"{i}-{name}.webp", "WEBP", quality=quality, method=4)


def run_pyvips(files: list[Path], out: Path) -> None:
    import pyvips

    for i, path in enumerate(files):
        for name, size, quality in PRESETS:
            pyvips.Image.thumbnail(str(path), size, height=size).webpsave(
                str(out / f"{i}-{name}.webp"), Q=quality, strip=True)


RUNNERS = {"groundwork": run_groundwork, "bare": run_bare, "pyvips": run_pyvips}
IMPORTS = {"groundwork": ("backend.media.images", "backend.media.processing", "backend.media.storage.local"),
           "bare": ("PIL.Image", "PIL.ImageOps", "PIL.WebPImagePlugin", "PIL.JpegImagePlugin"),
           "pyvips": ("pyvips",)}


def child(kind: str, count: int) -> None:
    """Process the corpus once with ``kind``; print the elapsed seconds as JSON."""
    files = make_corpus(count)
    for module in IMPORTS[kind]:  # a worker imports once: not part of the measured work
        importlib.import_module(module)
    with tempfile.TemporaryDirectory(prefix=f"b6-{kind}-") as folder:
        started, cpu_started = time.perf_counter(), time.process_time()
        RUNNERS[kind](files, Path(folder))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_mib": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's own high-water RSS (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(kind: str, count: int) -> tuple[float, float, float]:
    """(images per second, peak RSS in MiB, CPU ms per image) of one fresh process."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.b6_images", "--child", kind, "--files", str(count)],
                            cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    if proc.wait() != 0:
        raise RuntimeError(f"{kind} run failed")
    result = json.loads(output.strip().splitlines()[-1])
    return count / result["seconds"], result["peak_mib"], 1000 * result["cpu_seconds"] / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", choices=sorted(RUNNERS))
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.files)
        return 0
    make_corpus(args.files)
    kinds = ["groundwork", "bare"]
    try:
        import pyvips  # noqa: F401

        kinds.append("pyvips")
    except (ImportError, OSError):
        pass
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    for rep in range(args.reps):
        for kind in (kinds if rep % 2 == 0 else list(reversed(kinds))):
            runs[kind].append(measure(kind, args.files))
            print(kind, "{:.2f} img/s, {:.0f} MiB, {:.0f} CPU ms/img".format(*runs[kind][-1]), flush=True)
    rate = {k: statistics.median(r for r, _, _ in v) for k, v in runs.items()}
    peak = {k: statistics.median(m for _, m, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, _, c in v) for k, v in runs.items()}
    throughput_ratio = rate["groundwork"] / rate["bare"]
    memory_ratio = peak["groundwork"] / peak["bare"]
    rows = [table_header(),
            result_row(f"B6 variants, {args.files} × 12 MP JPEG → 320 + 1080 WebP (img/s)",
                       f"{rate['groundwork']:.2f}", f"{rate['bare']:.2f} (bare Pillow)", throughput_ratio, "≥ 0.8×",
                       throughput_ratio >= 0.8),
            result_row("B6 peak memory (MiB RSS)", f"{peak['groundwork']:.0f}", f"{peak['bare']:.0f} (bare Pillow)",
                       memory_ratio, "≤ 1.5×", memory_ratio <= 1.5),
            result_row("B6 diagnostic: CPU ms per image (noise-free view of the same runs)",
                       f"{cpu['groundwork']:.0f}", f"{cpu['bare']:.0f} (bare Pillow)",
                       cpu["bare"] / cpu["groundwork"], "—", None)]
    if "pyvips" in rate:
        rows.append(result_row("B6 diagnostic: bare pyvips thumbnail (img/s)", f"{rate['groundwork']:.2f}",
                               f"{rate['pyvips']:.2f} (pyvips)", rate["groundwork"] / rate["pyvips"], "—", None))
    body = "\n".join(rows) + (
        f"\n\nMedians of {args.reps} runs, each in a fresh process over the same {args.files} files "
        f"(alternating order); peak memory is each child's own VmHWM. Rerun: "
        f"`flock /tmp/groundwork-heavy.lock .venv/bin/python -m bench.b6_images`.")
    write_results(HERE / "RESULTS-b6.md", "B6: image variants", body)
    print(body)
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())
