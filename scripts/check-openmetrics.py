#!/usr/bin/env python3
"""Strict OpenMetrics 1.0 check of stdin with prometheus_client's parser (promtool 2.42 lints only the text format).

Exit 0 and print the family and sample counts when it parses; exit 1 with the parser's error otherwise.
"""
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
if not text.endswith("# EOF\n"):
    print("missing final '# EOF'", file=sys.stderr)
    sys.exit(1)
try:
    families = list(text_string_to_metric_families(text))
except Exception as error:  # the parser raises ValueError and friends
    print(f"invalid OpenMetrics: {error}", file=sys.stderr)
    sys.exit(1)
print(f"{len(families)} families, {sum(len(f.samples) for f in families)} samples")
