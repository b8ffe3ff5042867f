#!/usr/bin/env python3
"""Checks an nsa-ckpt export against Hugging Face transformers: loads DIR (model.safetensors + config.json,
written by `nsa-ckpt export-safetensors`) with AutoModelForCausalLM in float32 on the CPU, runs it on the
same tokens that `nsa-ckpt logits` ran our model on, and compares the logits:

    rel. err = ||ours - theirs||_2 / ||theirs||_2  must be <= --tol (default 1e-3)

Prints the versions, the model class, both logits' norms, the relative and max absolute errors and whether
the next-token argmax agrees at every position; exits 1 when the check fails, 2 on a usage or input error.

    python3 tests/tools/hf_logits_check.py --model EXPORT_DIR --logits OURS.npy --tokens 1,2,3

`--reference-npy OTHER.npy` compares against another .npy instead of running transformers (a dry run of
the comparison where torch is not installed).
"""
import argparse
import ast
import math
import struct
import sys
from array import array


def read_npy(path):
    """(shape, flat list of floats) of a little-endian f32 C-order .npy (format 1.x or 2.x); no numpy."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3):
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise ValueError(f"{path}: unsupported .npy version {major}")
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header.get("descr") != "<f4" or header.get("fortran_order"):
        raise ValueError(f"{path}: expected '<f4' in C order, got {header}")
    shape = tuple(header["shape"])
    count = math.prod(shape)
    values = array("f")
    values.frombytes(data[start + hlen:start + hlen + 4 * count])
    if sys.byteorder != "little":
        values.byteswap()
    if len(values) != count:
        raise ValueError(f"{path}: {len(values)} values, the header says {shape}")
    return shape, values.tolist()


def compare(ours, theirs, vocab):
    """(relative error, max abs error, positions whose argmax differs, ||ours||, ||theirs||)."""
    diff2 = sum((a - b) ** 2 for a, b in zip(ours, theirs))
    ref2 = sum(b * b for b in theirs)
    ours2 = sum(a * a for a in ours)
    max_abs = max((abs(a - b) for a, b in zip(ours, theirs)), default=0.0)
    rel = math.sqrt(diff2) / math.sqrt(ref2) if ref2 > 0 else math.sqrt(diff2)
    positions = len(ours) // vocab
    argmax_differs = []
    for t in range(positions):
        row_a, row_b = ours[t * vocab:(t + 1) * vocab], theirs[t * vocab:(t + 1) * vocab]
        if max(range(vocab), key=row_a.__getitem__) != max(range(vocab), key=row_b.__getitem__):
            argmax_differs.append(t)
    return rel, max_abs, argmax_differs, math.sqrt(ours2), math.sqrt(ref2)


def transformers_logits(model_dir, tokens):
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager")
    model = model.float().eval()
    with torch.no_grad():
        out = model(torch.tensor([tokens], dtype=torch.long)).logits[0]
    label = (f"transformers {transformers.__version__}, torch {torch.__version__}, "
             f"{type(model).__name__} (float32, CPU, eager attention)")
    return tuple(out.shape), out.double().flatten().tolist(), label


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="the export directory (model.safetensors + config.json)")
    p.add_argument("--logits", required=True, help="our logits: nsa-ckpt logits ... --out FILE.npy")
    p.add_argument("--tokens", required=True, help="the comma-separated tokens both models run on")
    p.add_argument("--tol", type=float, default=1e-3, help="largest relative error allowed (default 1e-3)")
    p.add_argument("--reference-npy", help="compare against this .npy instead of running transformers")
    args = p.parse_args()
    try:
        tokens = [int(t) for t in args.tokens.split(",")]
        shape, ours = read_npy(args.logits)
    except (ValueError, OSError) as e:
        print(f"hf_logits_check: error: {e}", file=sys.stderr)
        return 2
    if len(shape) != 2 or shape[0] != len(tokens):
        print(f"hf_logits_check: error: {args.logits}: shape {shape}, expected ({len(tokens)}, vocab)",
              file=sys.stderr)
        return 2
    if args.reference_npy:
        ref_shape, theirs = read_npy(args.reference_npy)
        label = f"reference {args.reference_npy}"
    else:
        if not args.model:
            print("hf_logits_check: error: --model DIR is required (or --reference-npy)", file=sys.stderr)
            return 2
        ref_shape, theirs, label = transformers_logits(args.model, tokens)
    print(f"reference: {label}")
    if tuple(ref_shape) != tuple(shape):
        print(f"FAIL: shapes differ: ours {shape}, reference {tuple(ref_shape)}")
        return 1
    rel, max_abs, argmax_differs, norm_ours, norm_ref = compare(ours, theirs, shape[1])
    print(f"tokens: {len(tokens)}, vocab: {shape[1]}; ||ours|| = {norm_ours:.6f}, ||reference|| = {norm_ref:.6f}")
    print(f"relative error: {rel:.3e} (tolerance {args.tol:.0e}); max abs error: {max_abs:.3e}; "
          f"argmax differs at {len(argmax_differs)} of {len(tokens)} positions")
    ok = rel <= args.tol and math.isfinite(rel)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
