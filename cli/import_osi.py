"""`osbatch import-osi pipeline.yaml [-o out.yaml] [--json]`: an OpenSearch Ingestion pipeline that uses the
`ml_inference` processor, as an osbatch pipeline config (docs/import-osi.md).

The config is validated by osbatch's own model (osbatch.config) before anything is written. Every field of the
OSI pipeline (and of `--connector`) is reported: mapped to which osbatch field, or not mapped and why; and
every osbatch field the OSI pipeline does not give is reported with the value chosen and why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from cli.exit_codes import ExitCode
from cli.osi_documents import read_connector, read_osi_pipeline
from cli.osi_mapping import Conversion, convert
from osbatch.config import parse_pipeline


def import_osi(args: argparse.Namespace) -> int:
    osi = read_osi_pipeline(args.pipeline_file, args.osi_pipeline)
    connector = read_connector(args.connector) if args.connector else None
    conversion = convert(
        osi, fallback_name=args.pipeline_file.stem, connector=connector, model=args.model, name=args.name
    )
    # Validated as any pipeline config is loaded: an error names the field, and exits 2.
    parse_pipeline(conversion.config, f"{args.pipeline_file} (imported)")
    text = config_yaml(conversion, args.pipeline_file)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    if args.json:
        print(json.dumps(report_json(conversion, args), indent=2))
    elif args.output:
        print(f"wrote {args.output}: pipeline '{conversion.config['name']}'")
        print(report_text(conversion), end="")
    else:
        sys.stdout.write(text)
        sys.stderr.write(report_text(conversion))
    return ExitCode.OK


def report_json(conversion: Conversion, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "source": str(args.pipeline_file),
        "osi_pipeline": conversion.osi_pipeline,
        "output": str(args.output) if args.output else None,
        "config": conversion.config,
        **conversion.notes.as_dict(),
    }


def report_text(conversion: Conversion) -> str:
    notes = conversion.notes
    lines = [f"mapped ({len(notes.mapped)}):"]
    lines += [f"  {n.osi} -> {n.osbatch}" + (f" ({n.note})" if n.note else "") for n in notes.mapped]
    lines.append(f"not mapped ({len(notes.unmapped)}):")
    lines += [f"  {n.osi}: {n.reason}" for n in notes.unmapped]
    lines.append(f"chosen by osbatch ({len(notes.defaulted)}):")
    lines += [f"  {n.osbatch} = {json.dumps(n.value)}: {n.reason}" for n in notes.defaulted]
    return "\n".join(lines) + "\n"


def config_yaml(conversion: Conversion, origin: Path) -> str:
    """The config, headed by comments saying where it came from and what was left out or chosen."""
    what = f" (sub-pipeline '{conversion.osi_pipeline}')" if conversion.osi_pipeline else ""
    header = [f"# Imported by `osbatch import-osi` from {origin}{what}.", "# Not carried over:"]
    header += [f"#   {n.osi}: {n.reason}" for n in conversion.notes.unmapped]
    header.append("# Chosen by osbatch, as the OSI pipeline does not say:")
    header += [f"#   {n.osbatch} = {json.dumps(n.value)}" for n in conversion.notes.defaulted]
    body = yaml.safe_dump(conversion.config, sort_keys=False, allow_unicode=True, width=110)
    return "\n".join(header) + "\n" + body
