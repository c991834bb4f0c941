#!/usr/bin/env python3
"""Prints every sample prometheus_client's reference parser reads from a fixture, one per line, for
ExpositionParserTests to compare with its own parse: `<sorted label pairs>\t<IEEE-754 bits of the value>`.

Usage: reference-samples.py text|openmetrics FILE
"""
import struct
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text


def escape(value):
    return '"' + value.replace("\\", "\\\\").replace("\n", "\\n") + '"'


fmt, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as handle:
    text = handle.read()
parse = parse_openmetrics if fmt == "openmetrics" else parse_text
for family in parse(text):
    for sample in family.samples:
        labels = ",".join(f"{k}={escape(v)}" for k, v in sorted(sample.labels.items()))
        bits = struct.unpack("<Q", struct.pack("<d", sample.value))[0]
        print(f"{labels}\t{bits}")
