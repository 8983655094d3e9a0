"""The checks file: one row per check (name, PASS/FAIL/SKIP, the x86_64 column, the aarch64 column),
tab-separated, written by the shell script and by the comparison; and the table and verdict made of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RESULTS = ("PASS", "FAIL", "SKIP")


@dataclass(frozen=True)
class Check:
    name: str
    result: str
    x86_64: str = "-"
    aarch64: str = ""

    @classmethod
    def of(cls, name: str, ok: bool, x86_64: object, aarch64: object) -> Check:
        """A PASS or FAIL row; the columns cut to what the table shows (details go to summary.json)."""
        return cls(name, "PASS" if ok else "FAIL", str(x86_64)[:44], str(aarch64)[:140])

    def line(self) -> str:
        fields = (self.name, self.result, self.x86_64, self.aarch64)
        return "\t".join(" ".join(field.split("\t")).replace("\n", " ") for field in fields)


def append(path: Path, checks: list[Check]) -> None:
    with path.open("a", encoding="utf-8") as file:
        for check in checks:
            file.write(check.line() + "\n")


def read(path: Path) -> list[Check]:
    """The rows of a checks file; a row that is not one of the three results is read as a FAIL."""
    checks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        name, result, x86_64, aarch64 = (line.split("\t", 3) + ["", "", ""])[:4]
        if result not in RESULTS:
            result, aarch64 = "FAIL", f"unreadable row: {line[:120]}"
        checks.append(Check(name, result, x86_64, aarch64))
    return checks


def summary(checks: list[Check], seconds: int, work: Path) -> tuple[str, int]:
    """The table and the verdict line, and the exit status: 1 when any check failed, else 0."""
    rows = [f"{'CHECK':<44} {'RESULT':<6} {'X86_64':<44} AARCH64"]
    rows += [f"{c.name:<44} {c.result:<6} {c.x86_64:<44} {c.aarch64}" for c in checks]
    failed = [c for c in checks if c.result == "FAIL"]
    skipped = [c for c in checks if c.result == "SKIP"]
    where = f"({seconds} s; details in {work})"
    if failed:
        verdict, status = f"test-arm64: FAIL: {len(failed)} of {len(checks)} checks failed {where}", 1
    else:
        skips = "; ".join(f"{c.name}: {c.aarch64}" for c in skipped)
        verdict = f"test-arm64: PASS: {len(checks) - len(skipped)} checks{'; SKIPPED ' + skips if skips else ''} {where}"
        status = 0
    return "\n" + "\n".join(rows) + "\n\n" + verdict, status
