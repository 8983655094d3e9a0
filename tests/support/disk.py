"""Real small filesystems for the disk-fault tests, mounted on a test's directory: a tmpfs of a few
MiB that a test fills up, frees, or remounts read-only and back (while no file on it is open for
writing); and an ext4 image on a loop device that a test makes fail as an SD card does: an error
makes the kernel remount it read-only under the open files (``errors=remount-ro``). Mounting needs
root (or CAP_SYS_ADMIN); without it the test is skipped with the reason."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest


class SmallDisk:
    def __init__(self, path: Path, size_kib: int):
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        mount(["-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)])
        self._filler = path / "filler"

    def fill(self) -> None:
        """Write until the filesystem is full (ENOSPC), leaving not a block free."""
        descriptor = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (64 * 1024, 4096, 512, 1):
                try:
                    while True:
                        os.write(descriptor, bytes(chunk))
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        """``ro`` or ``rw``: what the kernel does to an SD card after I/O errors, and back."""
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


def mount(arguments: list[str]) -> None:
    mounted = subprocess.run(["mount", *arguments], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem for the disk-fault tests: {mounted.stderr.strip()}")


class FailingCard:
    """An 8 MiB ext4 image mounted through a loop device with ``errors=remount-ro``, as Raspberry Pi
    OS mounts its SD card."""

    def __init__(self, path: Path, image: Path):
        if not shutil.which("mkfs.ext4"):
            pytest.skip("mkfs.ext4 is not installed (e2fsprogs)")
        with open(image, "wb") as file:
            file.truncate(8 * 1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", str(image)], check=True)
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        mount(["-o", "loop,errors=remount-ro", str(image), str(path)])
        device = subprocess.run(["findmnt", "-no", "SOURCE", str(path)], capture_output=True, text=True, check=True)
        self._trigger = Path("/sys/fs/ext4") / Path(device.stdout.strip()).name / "trigger_fs_error"
        if not self._trigger.exists():
            self.unmount()
            pytest.skip(f"this kernel cannot report an ext4 error on request ({self._trigger} is missing)")

    def fail(self) -> None:
        """An ext4 error, as after an I/O error: the kernel remounts it read-only, files open or not."""
        self._trigger.write_text("edge-daemon disk-fault test")

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def failing_card(tmp_path):
    """An ext4 image at ``tmp_path / "card"``, unmounted (and its loop device freed) after the test."""
    card = FailingCard(tmp_path / "card", tmp_path / "card.img")
    yield card
    card.unmount()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs at ``tmp_path / "disk"``, unmounted after the test."""
    disk = SmallDisk(tmp_path / "disk", 4096)
    yield disk
    disk.unmount()
