#!/usr/bin/env bash
# `make demo`: generate example data and run the pipeline on it. Args: VENV_BIN OUTDIR
set -euo pipefail
bin=${1:-.venv/bin}
out=${2:-demo-output}
engscore="$bin/engscore"
rm -rf "$out"
mkdir -p "$out/data"

echo "== generating example data (seeded) into $out/data"
"$bin/python" examples/generate.py "$out/data" --events 200000 --contacts 5000 --seed 42

echo
echo "== ingesting the provider sample exports (auto-detected presets)"
"$engscore" ingest examples/exports -o "$out/provider_events.parquet"

echo
echo "== ingesting a messy export: bad rows are skipped into a rejects file"
"$engscore" ingest "$out/data/raw_export.csv" --on-error skip -o "$out/raw_events.parquet"

echo
echo "== ingesting the generated events"
"$engscore" ingest "$out/data/events.parquet" -o "$out/events.parquet"

echo
echo "== scoring with the default rules (rules/default.yaml)"
"$engscore" score "$out/events.parquet" --as-of 2026-11-01T00:00:00Z -o "$out/scores.parquet"

echo
echo "== segments ready to re-import (built-in playbook + inactive for 6 months)"
"$engscore" segment --scores "$out/scores.parquet" --inactive 6m -o "$out/segments"

echo
echo "== list health: complaint and bounce rates against Gmail's and Yahoo's limits"
"$engscore" health "$out/events.parquet" --as-of 2026-11-01T00:00:00Z --by month --since 6m
"$engscore" health "$out/events.parquet" --as-of 2026-11-01T00:00:00Z --by provider
"$engscore" health "$out/events.parquet" --as-of 2026-11-01T00:00:00Z --by campaign \
  -o "$out/health_by_campaign.csv"

echo
echo "== the HTML report"
"$engscore" report --scores "$out/scores.parquet" --events "$out/events.parquet" \
  --segments "$out/segments" --contacts "$out/data/contacts.csv" --by country --by age_band \
  --title "Example engagement report" -o "$out/report.html"

echo
echo "== B2B lead scoring: engagement + fit from the contacts file (rules/b2b-lead-scoring.yaml)"
"$engscore" score "$out/events.parquet" --as-of 2026-11-01T00:00:00Z \
  -r rules/b2b-lead-scoring.yaml --contacts "$out/data/contacts.csv" -o "$out/lead_scores.csv"

echo
top=$("$bin/python" -c "import polars as pl; print(pl.read_parquet('$out/scores.parquet').sort(['score', 'contact_id'], descending=[True, False])['contact_id'][0])")
echo "== explaining the top contact's score: $out/explain_top_contact.json"
"$engscore" explain "$top" "$out/events.parquet" --as-of 2026-11-01T00:00:00Z --format json \
  > "$out/explain_top_contact.json"

echo
echo "== a cron-style project: engscore init, an export lands, engscore run"
"$engscore" init "$out/project" -q
cp "$out/data/events.parquet" "$out/project/incoming/export-2026-11-01.parquet"
"$engscore" run --config "$out/project/engscore.yaml" --as-of 2026-11-01T03:00:00Z

echo
echo "Outputs in $out/:"
find "$out" -maxdepth 1 -type f | sort | sed 's/^/  /'
echo "  $out/segments/ (one CSV + Parquet per segment, manifest.json)"
echo "  $out/project/runs/latest/ (the project run: scores, segments, health.csv, report.html, manifest.json)"
