"""PyTorch peer for bench/head_bench.ts: the SNARM head's forward from X (residual fusion + Mamba head +
maps) in PyTorch on the CPU, written op for op as the official code runs it (SNARM b65542f
`model/mamba_util.py` with mamba_ssm v1.1.1's slow path `selective_scan_ref`: a Python loop over
the sequence; the fixture README of ../shared/fixtures/snarm_official lists the same path), with
the official weights and input of the `paper` fixture. The official repository itself is not
available here; this port is checked against the fixture's outputs (printed max |error|) before
it is timed.

Prints `head paper torch: X s/image` (median of REPS after WARMUP warm-ups, `torch.set_num_threads(T)`).
With `--paired` (bench/_peer.ts startPairedPeer) it prints `ready` after the check instead, and
answers each line `W R` on stdin with W untimed and R timed forwards, `t <s> <s> …` (R times),
until stdin closes.
Needs Debian's python3-torch and python3-scipy. Usage:
  /usr/bin/python3 bench/head_torch.py FIXTURE_DIR [threads [warmup [reps]]] [--paired]   (default 6 and 9)
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

DT = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "F64": np.float64}


def load_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8 : 8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        a = np.frombuffer(raw[8 + n + s : 8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(a.copy())
    return out, head.get("__metadata__", {})


def encode(x):  # concat_abs_square: adaptive_avg_pool1d over [|x| ‖ x²] (channels pairwise)
    v = torch.cat([x.abs(), x * x], 1)  # (B, 2C, L)
    return F.adaptive_avg_pool1d(v.transpose(1, 2), x.shape[1]).transpose(1, 2)


def fusion(X, W, ratio):
    B, C2, h, w = X.shape
    C, L = C2 // 2, h * w
    r, f = torch.chunk(X.reshape(B, C2, L), 2, 1)
    R = encode(r)
    unary = torch.sigmoid(F.conv1d(R, W["simple_predictor.weight"].reshape(1, C, 1),
                                   W["simple_predictor.bias"]))[:, 0]
    way = unary + R.mean(1)
    K = int(round(ratio * L))
    idx = torch.topk(way, K, dim=1, largest=False).indices  # (B, K)
    mask = torch.zeros(B, L, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    fl = f.transpose(1, 2)  # (B, L, C)
    S = torch.empty_like(r)
    for b in range(B):
        refs = idx[b].sort().values
        d = torch.cdist(fl[b], fl[b][refs])  # (L, K)
        d[refs, torch.arange(K)] = float("inf")  # no self-match
        nn = refs[d.argmin(1)]
        S[b] = f[b][:, nn] - f[b]
    Z = torch.cat([R, encode(S)], 1).reshape(B, C2, h, w)
    return Z, mask


def perms(h, nscan):
    L = h * h
    row = torch.arange(L)
    col = torch.arange(L).reshape(h, h).t().reshape(-1)
    return [row, col, row.flip(0), col.flip(0)][:nscan]


def selective_scan_ref(u, delta, A, Bm, Cm, D, z, delta_bias):
    # mamba_ssm v1.1.1 selective_scan_ref (delta_softplus=True): u, delta, z (N, di, L); B, C (N, ns, L)
    delta = F.softplus(delta + delta_bias[..., None])
    x = A.new_zeros((u.shape[0], u.shape[1], A.shape[1]))
    deltaA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    deltaB_u = torch.einsum("bdl,bnl,bdl->bdln", delta, Bm, u)
    ys = []
    for i in range(u.shape[2]):
        x = deltaA[:, :, i] * x + deltaB_u[:, :, i]
        ys.append(torch.einsum("bdn,bn->bd", x, Cm[:, :, i]))
    y = torch.stack(ys, dim=2)
    out = y + u * D[..., None]
    return out * F.silu(z)


def mixer(x, W, p, dt_rank, ns):  # x (N, Ls, d) → (N, Ls, d), mamba_ssm Mamba.forward slow path
    N, Ls, d = x.shape
    xz = (x @ W[p + "in_proj.weight"].t()).transpose(1, 2)  # (N, 2di, Ls)
    xs, z = xz.chunk(2, 1)
    di = xs.shape[1]
    xs = F.silu(F.conv1d(xs, W[p + "conv1d.weight"], W[p + "conv1d.bias"], padding=3, groups=di)[..., :Ls])
    xdbl = xs.transpose(1, 2).reshape(-1, di) @ W[p + "x_proj.weight"].t()
    dt, Bm, Cm = torch.split(xdbl, [dt_rank, ns, ns], dim=-1)
    dt = (dt @ W[p + "dt_proj.weight"].t()).reshape(N, Ls, di).transpose(1, 2)
    Bm = Bm.reshape(N, Ls, ns).transpose(1, 2)
    Cm = Cm.reshape(N, Ls, ns).transpose(1, 2)
    A = -torch.exp(W[p + "A_log"])
    y = selective_scan_ref(xs, dt, A, Bm, Cm, W[p + "D"], z, W[p + "dt_proj.bias"])
    return y.transpose(1, 2) @ W[p + "out_proj.weight"].t()


def head(Z, mask, W, cfg):
    B, Cin, h, w = Z.shape
    L, d, nscan, depth = h * w, cfg["embed_dim"], cfg["scan"], cfg["depth"]
    ns = W["mamba_list.0.0.mixer.A_log"].shape[1]
    dt_rank = W["mamba_list.0.0.mixer.dt_proj.weight"].shape[1]
    ps = perms(h, nscan)
    logits = []
    for i, rate in enumerate(cfg["scale_list"]):
        E = F.conv2d(Z, W[f"conv_list.{i}.weight"], W[f"conv_list.{i}.bias"]).reshape(B, d, L)
        seq = torch.cat([E[:, :, p] for p in ps], 0).transpose(1, 2)  # (N, L, d)
        smask = torch.cat([mask[:, p] for p in ps], 0)  # (N, L) True = reference
        N = seq.shape[0]
        hcur, stream = seq, None
        for k in range(depth):
            pre = f"mamba_list.{i}.{k}."
            stream = hcur if stream is None else hcur + stream
            hn = stream * torch.rsqrt(stream.pow(2).mean(-1, keepdim=True) + 1e-5) * W[pre + "norm.weight"]
            hc = F.conv2d(hn.transpose(1, 2).reshape(N, d, h, w), W[pre + "conv.weight"],
                          W[pre + "conv.bias"], padding=1).reshape(N, d, L).transpose(1, 2).clone()
            sel = ~smask
            xin = hc[sel].reshape(N, -1, d)
            hc[sel] = mixer(xin, W, pre + "mixer.", dt_rank, ns).reshape(-1, d)
            hcur = hc
        ln = F.layer_norm(hcur + stream, (d,), W[f"norm_list.{i}.weight"], W[f"norm_list.{i}.bias"], 1e-5)
        for s, p in enumerate(ps):
            j = i * nscan + s
            feat = torch.empty(B, L, d)
            feat[:, p] = ln[s * B:(s + 1) * B]
            x = feat.transpose(1, 2).reshape(B, d, h, w)
            pre = f"head_list.{j}."
            x = F.conv2d(x, W[pre + "0.conv.weight"], padding=rate, dilation=rate)
            x = F.batch_norm(x, W[pre + "0.norm.running_mean"], W[pre + "0.norm.running_var"],
                             W[pre + "0.norm.weight"], W[pre + "0.norm.bias"], False, 0.0, 1e-5)
            logits.append(F.conv2d(F.relu(x), W[pre + "1.weight"], W[pre + "1.bias"]))
    return torch.stack(logits, 0)  # (nHeads, B, 1, h, w)


def forward(X, W, cfg):
    with torch.no_grad():
        Z, mask = fusion(X, W, cfg["self_ratio"])
        lg = head(Z, mask, W, cfg)
        H, Wd = cfg["image_size"][1], cfg["image_size"][2]
        up = F.interpolate(lg.flatten(0, 1), size=(H, Wd), mode="bilinear", align_corners=True)
        pix = torch.sigmoid(up).reshape(lg.shape[0], lg.shape[1], H, Wd).mean(0)
        sm = np.stack([gaussian_filter(m, sigma=4) for m in pix.numpy()])
        pooled = F.avg_pool2d(torch.from_numpy(sm)[:, None], 16, 2)
        score = pooled.flatten(1).max(1).values
    return lg, pix, sm, score


def main():
    paired = "--paired" in sys.argv
    if paired:
        sys.argv.remove("--paired")
    fix = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    W, meta = load_st(os.path.join(fix, "weights.safetensors"))
    cfg = json.loads(meta["config"])
    io, _ = load_st(os.path.join(fix, "io.safetensors"))
    X = io["X"]
    lg, pix, sm, score = forward(X, W, cfg)
    err = lambda a, b: float((a.reshape(-1) - b.reshape(-1)).abs().max())
    print(f"  torch port vs the official fixture: head_logits {err(lg, io['head_logits']):.2e}, "
          f"pixel_map {err(pix, io['pixel_map']):.2e}, smoothed "
          f"{err(torch.from_numpy(sm), io['pixel_map_smoothed_per_image']):.2e}, image score "
          f"{err(score, io['image_score_per_image']):.2e}", flush=True)
    # warm-ups and timed forwards: given by bench/head_bench.ts (the check above was the first warm-up)
    WARMUP = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 9

    def timed(warm, reps):
        """Seconds of `reps` forwards after `warm` untimed ones."""
        for _ in range(warm):
            forward(X, W, cfg)
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            forward(X, W, cfg)
            ts.append(time.perf_counter() - t)
        return ts

    if paired:
        print("ready", flush=True)
        for line in sys.stdin:
            warm, reps = (int(v) for v in line.split())
            print("t " + " ".join(f"{v:.6f}" for v in timed(warm, reps)), flush=True)
        return
    times = timed(WARMUP - 1, REPS)
    med = sorted(times)[REPS // 2]
    print(f"head paper torch: {med:.3f} s/image", flush=True)
    print(f"  median of {REPS} after {WARMUP} warm-ups (min {min(times):.3f} s), torch {torch.__version__}, {threads} threads", flush=True)


if __name__ == "__main__":
    main()
