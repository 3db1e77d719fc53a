"""What permessage-deflate would cost and save on the hub's fan-out, in one run.

Builds realistic ``events`` frames (500 device-status events, as the hub batches them) and
measures, with zlib configured as websockets' permessage-deflate does (raw deflate, 15-bit
window, context takeover), the bytes on the wire with and without compression and the CPU
time to compress (paid by the hub once per wall per frame: each wall has its own
compression context) and to decompress (paid by each wall).

    python benchmarks/compression.py [--frames N]

Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import random
import time
import zlib

from wallboard import protocol as P

KINDS = ["pos", "self_checkout", "scale", "esl_gateway", "camera", "gate", "printer", "ap", "router"]
STATUSES = ["ok"] * 20 + ["warn", "crit", "down", "maint"]


def frames(n: int, per: int = 500, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    seq = 1
    out = []
    for _ in range(n):
        evs = []
        for _ in range(per):
            s = rng.randrange(2000)
            k = rng.choice(KINDS)
            evs.append({"type": "device", "id": f"s{s:04d}-{k}-{rng.randrange(8)}", "ts": 1795000000.0 + seq * 0.001,
                        "seq": seq, "store": f"s{s:04d}", "kind": k, "status": rng.choice(STATUSES),
                        "metrics": {"cpu": round(rng.uniform(1, 90), 1)}})
            seq += 1
        out.append(P.encode_events(evs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    data = frames(args.frames)
    raw = sum(len(f) for f in data)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)  # one wall's context (context takeover)
    t0 = time.process_time()
    packed = [comp.compress(f) + comp.flush(zlib.Z_SYNC_FLUSH) for f in data]
    t_comp = time.process_time() - t0
    dec = zlib.decompressobj(-15)
    t0 = time.process_time()
    for p in packed:
        dec.decompress(p)
    t_dec = time.process_time() - t0
    t0 = time.process_time()
    for f in data:
        P.decode(f)
    t_decode = time.process_time() - t0
    wire = sum(len(p) for p in packed)
    events = args.frames * 500
    print(json.dumps({
        "frames": args.frames, "events": events,
        "bytes_per_event_raw": round(raw / events, 1), "bytes_per_event_deflate": round(wire / events, 1),
        "ratio": round(wire / raw, 3),
        "compress_us_per_event_per_wall": round(t_comp / events * 1e6, 3),
        "decompress_us_per_event": round(t_dec / events * 1e6, 3),
        "decode_us_per_event": round(t_decode / events * 1e6, 3),
        "hub_cpu_share_at_10k_ev_s_10_walls": round(t_comp / events * 10_000 * 10, 3),
        "mbit_s_per_wall_at_10k_ev_s_raw": round(raw / events * 10_000 * 8 / 1e6, 2),
        "mbit_s_per_wall_at_10k_ev_s_deflate": round(wire / events * 10_000 * 8 / 1e6, 2),
    }))


if __name__ == "__main__":
    main()
