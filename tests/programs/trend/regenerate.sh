#!/bin/sh
# Regenerates the trend fixtures with the real tools (pip install psrecord memory_profiler;
# Debian's prometheus package). Not run by the test suite, which reads the committed files.
set -eu
cd "$(dirname "$0")"
psrecord "python3 grow.py leak 10" --include-children --interval 0.1 --log psrecord-leak.log >/dev/null
psrecord "python3 grow.py plateau 10" --include-children --interval 0.1 --log psrecord-plateau.log >/dev/null
rm -f mprof-leak.dat  # mprof appends
mprof run -o mprof-leak.dat --interval 0.1 python3 grow.py leak 10 >/dev/null
rm -f mprof-children.dat
mprof run --multiprocess -o mprof-children.dat --interval 0.1 python3 grow_children.py 5 >/dev/null
# Prometheus scraping itself every second for 90 s; its own RSS over that time.
work=$(mktemp -d)
cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s}
scrape_configs: [{job_name: prometheus, static_configs: [{targets: ["localhost:19090"]}]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address=localhost:19090 >/dev/null 2>&1 &
prom=$!
sleep 90
end=$(date +%s)
curl -sf "http://localhost:19090/api/v1/query_range?query=process_resident_memory_bytes&start=$((end - 85))&end=$end&step=1" \
    > prometheus-self.json
curl -sf "http://localhost:19090/api/v1/query_range?query=%7B__name__%3D~%22process_resident_memory_bytes%7Cprocess_virtual_memory_bytes%22%7D&start=$((end - 85))&end=$end&step=1" \
    > prometheus-two-series.json
kill $prom
rm -rf "$work"
