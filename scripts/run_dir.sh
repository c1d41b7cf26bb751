# Sourced by the resumable run scripts (repro_jaco.sh, compare_mt10_architectures.sh).
# fresh_run_dir DIR: make way for a fresh run in DIR without deleting anything. Returns 1 (after saying so
# on stderr) when DIR holds run.lock (another writer, or one that died before its first snapshot: delete
# DIR by hand then); otherwise moves an existing DIR aside to DIR.incomplete.<time> and returns 0.
fresh_run_dir() {
  local dir=$1
  if [ -e "$dir/run.lock" ]; then
    echo "skip: $dir has run.lock (another writer running? if not, delete it)" >&2
    return 1
  fi
  if [ -e "$dir" ]; then mv "$dir" "$dir.incomplete.$(date +%Y%m%d-%H%M%S)"; fi
  return 0
}
