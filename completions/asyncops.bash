# bash completion for asyncops                                -*- shell-script -*-
# Installed as share/bash-completion/completions/asyncops.

_asyncops_recent_ids() {
    # Recent operation ids from the daemon; no jq: pull "id":"..." with sed.
    asyncops list -o jsonl --limit 20 2>/dev/null |
        sed -n 's/^.*"id":"\([^"]*\)".*$/\1/p'
}

_asyncops_unfinished_ids() {
    # What cancel can act on: pending and processing operations only.
    local s
    for s in pending processing; do
        asyncops list -o jsonl --limit 20 --state "$s" 2>/dev/null |
            sed -n 's/^.*"id":"\([^"]*\)".*$/\1/p'
    done
}

_asyncops_paths() {
    # Paths for submit METHOD: those of the embedded default route table (a
    # --routes file of the daemon is not known to the CLI).
    printf '%s\n' /users /users/
}

_asyncops_principals() {
    # Principals in the local tokens file (asyncops token list: a header, then PRINCIPAL ROLE HASH).
    asyncops token list 2>/dev/null | sed -n '2,$s/^\([^ ]*\) .*$/\1/p'
}

# A command group's next word (token, store): its options ($1, with the
# global ones) after a dash, else one of its subcommands ($2). Reads the
# caller's cur and global.
_asyncops_group_word() {
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$1 $global" -- "$cur"))
    else COMPREPLY=($(compgen -W "$2" -- "$cur")); fi
}

# Completes an argument (a word that is not a flag) from what command $1
# prints; false, having run nothing, when the word is a flag.
_asyncops_arg_from() {
    [[ $cur == -* ]] && return 1
    COMPREPLY=($(compgen -W "$("$1")" -- "$cur"))
}

_asyncops() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
        prev="${COMP_WORDS[COMP_CWORD-1]}"
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="up submit get retry list watch tail cancel forget workers stats store token keygen config version help daemon worker"
    local global="--url -o --output --json --config --token --cacert --data-dir --help --version"
    local states="pending processing completed rejected failed canceled"

    case "$prev" in
        -o|--output) COMPREPLY=($(compgen -W "table json jsonl" -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "$states" -- "$cur")); return ;;
        --sync) COMPREPLY=($(compgen -W "normal full" -- "$cur")); return ;;
        --data-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --role) COMPREPLY=($(compgen -W "submitter reader admin" -- "$cur")); return ;;
        --config|--routes|--cacert|--tokens) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --url|--token|--principal|--name|--since|--limit|--cursor|--timeout|--workers|--listen|--service|-d|--data|--idempotency-key|--older-than)
            return ;;
    esac

    # The command (and store's or token's subcommand) typed so far.
    local cmd="" sub="" i
    for ((i = 1; i < cword; i++)); do
        case "${words[i]}" in
            -*) ;;
            *)
                case "${words[i-1]}" in
                    -o|--output|--url|--config|--data-dir|--state|--name|--limit|--since|--cursor|--older-than) continue ;;
                    --token|--cacert|--tokens|--principal|--role) continue ;;
                esac
                if [[ -z $cmd ]]; then cmd="${words[i]}"
                elif [[ ($cmd == store || $cmd == token) && -z $sub ]]; then sub="${words[i]}"
                fi ;;
        esac
    done

    local opts=""
    case "$cmd" in
        "")
            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$global" -- "$cur"))
            else COMPREPLY=($(compgen -W "$commands" -- "$cur")); fi
            return ;;
        daemon|worker) return ;;  # their flags belong to asyncopsd / asyncops-worker
        up) opts="--data-dir --listen --workers --service --sync --routes" ;;
        submit)
            opts="-d --data -w --wait --timeout --idempotency-key"
            if [[ $cur != -* ]]; then
                # The method first, then a path (not the methods again).
                local n=0
                for ((i = 1; i < cword; i++)); do [[ ${words[i]} == submit ]] && n=$((cword - i)); done
                if ((n <= 1)); then COMPREPLY=($(compgen -W "POST PUT PATCH DELETE" -- "$cur"))
                else COMPREPLY=($(compgen -W "$(_asyncops_paths)" -- "$cur")); fi
                return
            fi ;;
        get|watch|forget|retry)
            [[ $cmd == watch ]] && opts="--timeout"
            [[ $cmd == retry ]] && opts="-w --wait --timeout --idempotency-key"
            [[ $cmd == forget ]] && opts="-y --yes"
            _asyncops_arg_from _asyncops_recent_ids && return ;;
        cancel)
            opts="--state --name --older-than --owner --resource -y --yes"
            _asyncops_arg_from _asyncops_unfinished_ids && return ;;
        help)
            if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "--man" -- "$cur")); return; fi
            if [[ $prev == --man ]]; then
                COMPREPLY=($(compgen -W "asyncops asyncopsd asyncops-worker asyncops.conf asyncops-routes" -- "$cur")); return
            fi
            COMPREPLY=($(compgen -W "$commands" -- "$cur")); return ;;
        list) opts="--state --name --since --until --code --owner --resource --limit --cursor --all" ;;
        tail) opts="--state --name" ;;
        stats) opts="--data-dir" ;;
        config) opts="--daemon" ;;
        keygen) ;;
        token)
            opts="--data-dir --tokens"  # the token file's flags, which every token command takes
            case "$sub" in
                "") _asyncops_group_word "$opts" "add list revoke"; return ;;
                add) opts="--principal --role $opts" ;;
                revoke) _asyncops_arg_from _asyncops_principals && return ;;
            esac ;;
        store)
            case "$sub" in
                "") _asyncops_group_word "--data-dir" "info ops history vacuum export check prune"; return ;;
                ops) opts="--state --name --since --limit" ;;
                prune) opts="--older-than" ;;
                history)
                    _asyncops_arg_from _asyncops_recent_ids && return ;;
            esac ;;
    esac
    COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
}
complete -F _asyncops asyncops
