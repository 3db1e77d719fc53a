#!/usr/bin/env python3
"""Generate the wall's alert sounds into ``assets/sounds/`` (16-bit mono PCM, 22.05 kHz).

    python3 tools/make_sounds.py            # (re)write assets/sounds/*.wav
    python3 tools/make_sounds.py --check    # exit 1 if the committed files differ

The output is deterministic (no randomness, no timestamps in WAV headers), so the
committed files can be checked against this script (to 1 LSB, see ``matches``). Every sound is synthesised here from
sine partials: there is no third-party material, and the files are dedicated to the
public domain (CC0 1.0), see ``assets/sounds/README.md``.

Sounds (names are the values allowed in a layout's ``[sound]`` table):
- ``p1_alarm``: two tones alternating upward, each pair higher and louder (escalating).
- ``p1_urgent``: the escalated P1: faster, higher, full level.
- ``p2_chime``: one soft bell-like chime that decays.
"""
from __future__ import annotations

import argparse
import io
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 22050
ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "assets" / "sounds"


def _tone(freq: float, dur_s: float, level: float, fade_s: float = 0.006) -> np.ndarray:
    """A beep with a few odd harmonics (cuts through room noise) and short fades
    (no clicks). Float samples in -level..level."""
    t = np.arange(int(round(dur_s * RATE))) / RATE
    wave_ = (np.sin(2 * np.pi * freq * t)
             + 0.30 * np.sin(2 * np.pi * 3 * freq * t)
             + 0.12 * np.sin(2 * np.pi * 5 * freq * t))
    wave_ /= 1.42
    n_fade = max(1, int(fade_s * RATE))
    env = np.ones_like(t)
    ramp = np.linspace(0.0, 1.0, n_fade)
    env[:n_fade] = ramp
    env[-n_fade:] = ramp[::-1]
    return level * wave_ * env


def _silence(dur_s: float) -> np.ndarray:
    return np.zeros(int(round(dur_s * RATE)))


def _beeps(pairs: list[tuple[float, float, float]], on_s: float, gap_s: float) -> np.ndarray:
    parts = []
    for lo, hi, level in pairs:
        parts += [_tone(lo, on_s, level), _silence(gap_s), _tone(hi, on_s, level), _silence(gap_s)]
    y = np.concatenate(parts[:-1])
    return y * (max(level for _, _, level in pairs) / np.max(np.abs(y)))  # loudest at level


def p1_alarm() -> np.ndarray:
    """Two-tone pairs stepping up in pitch and level: 0.86 s."""
    return _beeps([(784.0, 1046.5, 0.55), (880.0, 1174.7, 0.72), (988.0, 1318.5, 0.90)],
                  on_s=0.11, gap_s=0.04)


def p1_urgent() -> np.ndarray:
    """The escalated P1: four fast high pairs at full level: 0.9 s."""
    return _beeps([(1046.5, 1396.9, 0.92)] * 4, on_s=0.08, gap_s=0.0367)


def p2_chime() -> np.ndarray:
    """A single bell-like chime (G5 with inharmonic partials), decaying: 0.8 s."""
    t = np.arange(int(0.8 * RATE)) / RATE
    f = 784.0
    partials = [(1.0, 1.0, 4.0), (2.0, 0.45, 6.0), (2.76, 0.25, 8.0), (5.4, 0.08, 12.0)]
    y = sum(a * np.exp(-d * t) * np.sin(2 * np.pi * f * m * t) for m, a, d in partials)
    attack = np.minimum(1.0, t / 0.004)
    tail = np.clip((0.8 - t) / 0.05, 0.0, 1.0)         # reach exact silence at the end
    y = y * attack * tail
    return 0.6 * y / np.max(np.abs(y))


SOUNDS = {"p1_alarm": p1_alarm, "p1_urgent": p1_urgent, "p2_chime": p2_chime}


def render(name: str) -> np.ndarray:
    """The named sound as int16 samples (KeyError for an unknown name)."""
    y = np.clip(SOUNDS[name](), -1.0, 1.0)
    return np.round(y * 32767).astype("<i2")


def wav_bytes(samples: np.ndarray) -> bytes:
    """A complete 16-bit mono 22.05 kHz WAV file holding ``samples``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def matches(path: Path, samples: np.ndarray) -> bool:
    """Whether the WAV at ``path`` has our format and ``samples`` within 1 LSB (math
    libraries may differ in the last bit of a sine; a real change is far larger)."""
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error):
        return False
    if fmt != (1, 2, RATE) or len(data) != len(samples):
        return False
    return int(np.max(np.abs(data.astype(np.int32) - samples.astype(np.int32)))) <= 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    bad = 0
    for name in SOUNDS:
        samples = render(name)
        path = args.out / f"{name}.wav"
        if args.check:
            same = matches(path, samples)
            print(f"{'ok  ' if same else 'DIFF'} {path}")
            bad += not same
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            data = wav_bytes(samples)
            path.write_bytes(data)
            print(f"wrote {path} ({len(data)} bytes, {(len(data) - 44) / 2 / RATE:.2f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
