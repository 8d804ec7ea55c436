"""A short fuzz run of one target through the built extension, with atheris (libFuzzer's
engine as a Python package, so it needs no clang): the CI's fuzzing on every submission.

    python tests/fuzz_smoke.py TARGET SECONDS OUT_CORPUS_DIR

Each input goes through ``fuzz_replay.replay(TARGET, input)``: the same decoding of the
libFuzzer harness's input layout (``fuzz/fuzz_<target>.c``) and the same checks against a
reference, but on ``ngffcore._core`` as installed, one native thread. The run starts from the
committed seeds (``fuzz/seeds/<target>/``) and the regression inputs (``tests/data/fuzz/``);
new inputs go to OUT_CORPUS_DIR. The extension is not coverage-instrumented, so atheris sees
the Python side only: this is a bounded smoke on every change, not the campaign (that is
``fuzz/run.sh``, ASan/UBSan-instrumented, see ``docs/fuzzing.md``).

Exit status 0: no failure. A failing input is written to ``OUT_CORPUS_DIR/../crash-*`` and
the status is non-zero.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    target, seconds, out_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    sys.path.insert(0, str(HERE))
    import atheris

    with atheris.instrument_imports(include=["fuzz_replay"]):
        import fuzz_replay

    import ngffcore

    ngffcore.set_num_threads(1)  # as in the libFuzzer harness: state left by one input shows
    seeds = ROOT / "fuzz" / "seeds" / target
    regress = HERE / "data" / "fuzz"
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(regress.glob(f"{target}-*.bin")):  # regressions join the start corpus
        (out_dir / path.name).write_bytes(path.read_bytes())
    max_len = {"grid": 512, "render": 4096, "shard": 70000}.get(target, 32768)

    def one_input(data: bytes) -> None:
        fuzz_replay.replay(target, data)

    args = [sys.argv[0], f"-max_total_time={seconds}", f"-max_len={max_len}",
            "-rss_limit_mb=3072", "-timeout=30", "-print_final_stats=1",
            f"-artifact_prefix={out_dir.parent}{os.sep}crash-{target}-", str(out_dir)]
    if seeds.is_dir():
        args.append(str(seeds))
    atheris.Setup(args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
