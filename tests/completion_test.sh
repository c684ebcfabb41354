#!/usr/bin/env bash
# Proves the bash completion completes subcommands, flags and values:
# sources the script, sets COMP_WORDS/COMP_CWORD, calls _asyncops, checks COMPREPLY.
set -u
script="$1"
fail=0
# shellcheck disable=SC1090
source "$script"
expect() {  # expect "WANTED" word...
  local want="$1"; shift
  COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
  COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
  _asyncops asyncops "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  local got=" ${COMPREPLY[*]} "
  for w in $want; do
    if [[ $got != *" $w "* ]]; then echo "FAIL: '${COMP_WORDS[*]}' should offer $w; got:$got"; fail=1; fi
  done
}
expect "stats store submit" asyncops s
expect "version" asyncops ver
expect "--output --url --json" asyncops --
expect "--state --limit" asyncops list --
expect "rejected" asyncops list --state rej
expect "json jsonl" asyncops -o js
expect "vacuum" asyncops store va
expect "--daemon" asyncops config --d
expect "--wait" asyncops submit POST /users --w
expect "/users" asyncops submit POST /
expect "--all --since" asyncops list --
expect "--until --code --owner --resource" asyncops list --
expect "--owner --resource" asyncops cancel --
expect "forget" asyncops fo
expect "help" asyncops he
expect "--older-than --yes" asyncops cancel --
expect "--data-dir" asyncops --d
expect "--man" asyncops help --m
expect "retry" asyncops ret
expect "--wait --idempotency-key" asyncops retry --
expect "asyncopsd asyncops-worker" asyncops help --man asyncops
[[ $(type -t _asyncops_recent_ids) == function ]] || { echo "FAIL: no id completion"; fail=1; }
[[ $fail == 0 ]] && echo "bash completion ok"
exit $fail
