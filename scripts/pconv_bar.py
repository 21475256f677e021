"""Check a `holefill bench` report against the bar for shipping PConv weights (issue 4).

    python scripts/pconv_bar.py runs/bench256/summary.json runs/bench_cbsd68/summary.json

For each report (it must hold ``pconv`` and ``telea``, same pairs), over the bins 0.2-0.6 of the
"all" border group:

- PSNR of pconv at least 0.5 dB above Telea on average, and no bin more than 0.2 dB below it;
- SSIM of pconv at least Telea's in every bin.

Prints one table per report and per border group (N, B and all, for information) and exits 0 only
when every report meets the bar in the "all" group.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BAR_BINS = ("0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6")
MEAN_GAIN_DB = 0.5
WORST_BIN_DB = -0.2


def check(summary: dict, group: str = "all", method: str = "pconv", reference: str = "telea"):
    """(passed, lines) for one report and border group."""
    psnr, ssim = summary["metrics"]["psnr"], summary["metrics"]["ssim"]
    for name in (method, reference):
        if name not in psnr:
            raise SystemExit(f"error: the report has no {name!r} rows")
    lines = [
        f"{'bin':<9} {'psnr ' + method:>11} {reference:>7} {'diff':>6}   "
        f"{'ssim ' + method:>11} {reference:>7}"
    ]
    gains, ok = [], True
    for bin_ in BAR_BINS:
        p, r = psnr[method][group].get(bin_), psnr[reference][group].get(bin_)
        s, t = ssim[method][group].get(bin_), ssim[reference][group].get(bin_)
        if None in (p, r, s, t):
            lines.append(f"{bin_:<9} (no pairs)")
            continue
        gains.append(p - r)
        flags = []
        if p - r < WORST_BIN_DB:
            flags.append(f"psnr < telea {WORST_BIN_DB:+.1f}")
        if s < t:
            flags.append("ssim < telea")
        ok &= not flags
        lines.append(
            f"{bin_:<9} {p:11.2f} {r:7.2f} {p - r:+6.2f}   {s:11.3f} {t:7.3f}  {', '.join(flags)}"
        )
    mean = sum(gains) / len(gains) if gains else float("nan")
    ok &= bool(gains) and mean >= MEAN_GAIN_DB
    lines.append(f"mean PSNR gain over 0.2-0.6: {mean:+.2f} dB (bar {MEAN_GAIN_DB:+.1f})")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="summary.json of holefill bench")
    parser.add_argument("--method", default="pconv")
    args = parser.parse_args(argv)
    passed = True
    for path in args.summaries:
        summary = json.loads(path.read_text())
        settings = summary["settings"]
        print(f"# {path} ({settings['pairs']} pairs, size {settings['size'] or 'native'})")
        for group in ("N", "B", "all"):
            ok, lines = check(summary, group, args.method)
            print(f"## border group {group}: {'meets' if ok else 'misses'} the bar")
            print("\n".join(lines))
            if group == "all":
                passed &= ok
        print()
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
