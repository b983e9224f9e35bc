#!/usr/bin/env bash
# Rebuilds the demo's starter category set (starter/ut1/) from the UT1
# lists in the shared data folder: for each UT1 category, the entries for
# sites in the Tranco top 100,000 (so the demo blocks sites people know),
# and all of UT1's adult URL entries. Only UT1 entries are copied (CC BY-SA
# 4.0, attribution in starter/ATTRIBUTION.md); the Tranco ranking is used
# to choose them and is not shipped.
#
#   internal/lists/builtin/mkstarter.sh [SHARED_DATA_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-$here/../../../../shared/data}
ut1=$data/categories/ut1
out=$here/starter/ut1
top=$(mktemp)
trap 'rm -f "$top"' EXIT
zcat "$data/topsites/tranco_top_100k.csv.gz" | tr -d '\r' | sort -u >"$top"
rm -rf "$out"
for dir in "$ut1"/*/; do
  cat=$(basename "$dir")
  case $cat in
    # identical domain files to redirector; allow-type lists
    strict_redirector|strong_redirector|bank|child|educational_games|sexual_education) continue ;;
  esac
  for kind in domains; do
    src=$dir/$kind
    if [ -f "$src.gz" ]; then reader=(zcat "$src.gz"); elif [ -f "$src" ]; then reader=(cat "$src"); else continue; fi
    sel=$("${reader[@]}" | tr -d '\r' | sort -u | comm -12 - "$top")
    if [ -n "$sel" ]; then
      mkdir -p "$out/$cat"
      printf '%s\n' "$sel" >"$out/$cat/$kind"
    fi
  done
done
mkdir -p "$out/adult"
tr -d '\r' <"$ut1/adult/urls" | sed '/^$/d' >"$out/adult/urls"
wc -l "$out"/*/* | tail -1
