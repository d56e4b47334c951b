#!/usr/bin/env python
"""Regenerate the capstone's receipts: ``images/capstone/receipt_*.png`` and ``images/capstone/receipts.json``.

The files are committed, so learners never run this script. It shows how every receipt was drawn and makes them
again byte for byte (Pillow drawing, fixed seeds, no timestamps). The ground truth is right by construction: the
merchant, date, total and payment of each receipt are the parameters it was drawn from, and each total is the sum
of its printed items (plus tax where one is printed), checked below.

Run from the repository root::

    python scripts/make_capstone_images.py

``receipts.json`` also lists the evaluation set's receipt (``eval/receipt.png``, made by
``scripts/make_eval_set.py``) with the fields of its label in ``images/eval/labels.json``, so the capstone reads
five receipts. Every name, address and number is invented. Fonts: DejaVu Sans Mono, bundled with matplotlib.
Used by notebooks/15_capstone.ipynb.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
OUT = IMAGES / "capstone"
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"
WIDTH = 32                         # characters per receipt line

# Each receipt: the fields (the ground truth), the lines printed around them, and how the paper looks.
RECEIPTS = [
    {"file": "receipt_books.png", "merchant": "HARBOUR BOOKS", "date": "2026-12-03", "total": 41.90,
     "payment": "MASTERCARD", "printed_date": "03/12/2026 16:45", "address": "4 Quay Street",
     "items": [("Field guide to moths", 24.00), ("Notebook A5", 6.50), ("Postcards x4", 4.40)], "tax": 7.00,
     "paid": "Card: MASTERCARD ****1188", "size": 18, "ink": 35, "paper": 255, "angle": 0.0, "noise": 0},
    {"file": "receipt_cafe.png", "merchant": "GREEN LEAF CAFE", "date": "2026-12-01",
     "total": 8.75, "payment": "CASH", "printed_date": "2026-12-01 08:03", "address": "Station Road 19",
     "items": [("Flat white", 3.40), ("Banana bread", 3.10), ("Orange juice", 2.25)], "tax": None,
     "paid": "Paid CASH 10.00  Change 1.25", "size": 18, "ink": 40, "paper": 242, "angle": 3.5, "noise": 1500},
    {"file": "receipt_pharmacy.png", "merchant": "CITY PHARMACY", "date": "2026-12-02", "total": 17.30,
     "payment": "VISA", "printed_date": "Dec 2, 2026 11:20", "address": "88 High Street",
     "items": [("Plasters 20", 3.95), ("Hand cream", 6.80), ("Vitamin C x30", 6.55)], "tax": None,
     "paid": "VISA contactless ****7731", "size": 15, "ink": 120, "paper": 236, "angle": 0.0, "noise": 0},
    {"file": "receipt_hardware.png", "merchant": "NORTH STAR HARDWARE", "date": "2026-11-30", "total": 64.05,
     "payment": "AMEX", "printed_date": "30.11.2026 14:10", "address": "Unit 7, Mill Park",
     "items": [("Wood screws 200", 8.90), ("Hinges x6", 14.70), ("Wall paint 2.5L", 29.95)], "tax": 10.50,
     "paid": "AMEX ****3009  TOTAL DUE PAID", "size": 18, "ink": 30, "paper": 250, "angle": -2.0, "noise": 800},
]


def lines_of(r: dict) -> list[str]:
    """The receipt's printed lines, fixed width: merchant, address, date, items, (subtotal, tax,) total, payment."""
    def row(left: str, amount: float) -> str:
        return f"{left:<{WIDTH - 9}}{amount:>9.2f}"

    lines = [r["merchant"], r["address"], f"Date: {r['printed_date']}", "-" * WIDTH]
    lines += [row(name, price) for name, price in r["items"]]
    lines.append("-" * WIDTH)
    subtotal = round(sum(price for _, price in r["items"]), 2)
    if r["tax"] is not None:
        lines += [row("SUBTOTAL", subtotal), row("TAX", r["tax"])]
        subtotal = round(subtotal + r["tax"], 2)
    assert subtotal == r["total"], f"{r['file']}: items and tax add up to {subtotal}, not {r['total']}"
    lines += [row("TOTAL", r["total"]), r["paid"], "Thank you!"]
    return lines


def draw(r: dict, seed: int) -> Image.Image:
    font = ImageFont.truetype(str(FONT), r["size"])
    lines = lines_of(r)
    pad, gap = 30, int(r["size"] * 1.45)
    width = int(max(font.getlength(line) for line in lines)) + 2 * pad
    img = Image.new("RGB", (width, len(lines) * gap + 2 * pad), (r["paper"],) * 3)
    d = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        d.text((pad, pad + i * gap), line, font=font, fill=(r["ink"],) * 3)
    rng = random.Random(seed)
    for _ in range(r["noise"]):                                   # specks of a worn thermal print
        v = rng.randrange(150, 215)
        d.point((rng.randrange(img.width), rng.randrange(img.height)), fill=(v, v, v))
    if r["angle"]:
        img = img.rotate(r["angle"], resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(205, 200, 190))
    return img.filter(ImageFilter.GaussianBlur(0.4)) if r["noise"] else img


def main() -> None:
    OUT.mkdir(exist_ok=True)
    labels = json.loads((IMAGES / "eval" / "labels.json").read_text(encoding="utf-8"))
    bakery = next(c for c in labels["cases"] if c["id"] == "receipt")
    truth = [{"image": "eval/receipt.png", **bakery["expected"],
              "label_source": "generated by scripts/make_eval_set.py (case 'receipt' of images/eval/labels.json)"}]
    for seed, r in enumerate(RECEIPTS, start=1):
        draw(r, seed).save(OUT / r["file"], "PNG", optimize=True)
        truth.append({"image": f"capstone/{r['file']}", "merchant": r["merchant"], "date": r["date"],
                      "total": r["total"], "payment": r["payment"],
                      "label_source": "generated: the fields this receipt was drawn from"})
    data = {"about": "Ground truth of the capstone's receipts (notebooks/15_capstone.ipynb): merchant, date "
                     "(YYYY-MM-DD), total paid and payment (VISA, MASTERCARD, AMEX or CASH). Image paths are relative "
                     "to images/. Made by scripts/make_capstone_images.py; every name and number is invented.",
            "receipts": truth}
    (OUT / "receipts.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(RECEIPTS)} receipts and receipts.json to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
