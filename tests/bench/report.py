#!/usr/bin/env python3
"""make bench's table and build/bench.json from the rows the benches wrote.

usage: report.py ROWS.tsv MACHINE.txt JSON_OUT [EXTRA_TEXT...]

ROWS.tsv: one row a line (docs/performance.md, "Rows"):
  key label unit svc_median svc_p10 svc_p90 base_median base_p10 base_p90 goal [load1]
lines starting with "#load V" give the load average for the rows above them
that carry none; other lines are kept as "unparsed" in the JSON and printed
under the table (a program that still prints text instead of rows).
MACHINE.txt: key=value lines (cpu, cores, kernel, load_start, ...).
EXTRA_TEXT: files whose text is printed after the table (human output).
"""
import json
import sys


def num(s):
    if s in ("", "-"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "calls/s":
        return "%.3gM" % (v / 1e6) if v >= 1e6 else "%.0f" % v
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def main():
    rows_path, machine_path, json_out = sys.argv[1:4]
    extra = sys.argv[4:]
    machine = {}
    with open(machine_path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                machine[k] = v
    rows, unparsed, pending = [], [], []
    with open(rows_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#load"):
                for r in pending:
                    r["load1"] = num(line.split()[1])
                pending = []
                continue
            c = line.split("\t")
            if len(c) < 10 or num(c[3]) is None and c[3] != "-":
                unparsed.append(line)
                continue
            r = {
                "key": c[0], "label": c[1], "unit": c[2],
                "svc": {"median": num(c[3]), "p10": num(c[4]), "p90": num(c[5])},
                "baseline": {"median": num(c[6]), "p10": num(c[7]), "p90": num(c[8])},
                "goal": num(c[9]),
                "load1": num(c[10]) if len(c) > 10 else None,
            }
            s, b = r["svc"]["median"], r["baseline"]["median"]
            r["ratio"] = s / b if s is not None and b else None
            # calls/s: higher is better, the goal is a floor
            better_high = r["unit"] == "calls/s"
            if r["ratio"] is None or r["goal"] is None:
                r["met"] = None
            elif better_high:
                r["met"] = r["ratio"] >= r["goal"]
            else:
                r["met"] = r["ratio"] <= r["goal"]
            rows.append(r)
            if r["load1"] is None:
                pending.append(r)

    print()
    print("machine: %s, %s cores, kernel %s, load average at start %s" % (
        machine.get("cpu", "?"), machine.get("cores", "?"), machine.get("kernel", "?"),
        machine.get("load_start", "?")))
    hdr = ("what", "unit", "svc", "p10-p90", "baseline", "p10-p90", "ratio", "goal", "load")
    lines = []
    for r in rows:
        s, b = r["svc"], r["baseline"]
        goal = "-" if r["goal"] is None else (
            (">=" if r["unit"] == "calls/s" else "<=") + "%gx" % r["goal"])
        if r["met"] is False:
            goal += " MISSED"
        lines.append((r["label"], r["unit"], fmt(s["median"], r["unit"]),
                      "%s-%s" % (fmt(s["p10"], r["unit"]), fmt(s["p90"], r["unit"])),
                      fmt(b["median"], r["unit"]),
                      "%s-%s" % (fmt(b["p10"], r["unit"]), fmt(b["p90"], r["unit"])),
                      "-" if r["ratio"] is None else "%.2fx" % r["ratio"], goal,
                      "-" if r["load1"] is None else "%.2f" % r["load1"]))
    w = [max(len(x[i]) for x in lines + [hdr]) for i in range(len(hdr))]
    for x in [hdr] + lines:
        print("  ".join(v.ljust(w[i]) if i == 0 else v.rjust(w[i]) for i, v in enumerate(x)))
    print("ratio = svc median / baseline median; spread = 10th-90th percentile; "
          "load = 1-minute load average when the row was measured")
    for line in unparsed:
        print(line)
    for path in extra:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if text.strip():
            print()
            sys.stdout.write(text)
    doc = {"machine": machine, "rows": rows, "unparsed": unparsed}
    with open(json_out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    import os
    os.replace(json_out + ".tmp", json_out)
    print("\nwritten: %s" % json_out)


if __name__ == "__main__":
    main()
