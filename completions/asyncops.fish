# fish completion for asyncops. Installed as share/fish/vendor_completions.d/asyncops.fish.

set -l commands up submit get retry list watch tail cancel forget help workers stats store token keygen config version daemon worker
set -l states pending processing completed rejected failed canceled

function __asyncops_unfinished_ids
    for s in pending processing
        asyncops list -o jsonl --limit 20 --state $s 2>/dev/null | sed -n 's/^.*"id":"\([^"]*\)".*$/\1/p'
    end
end

function __asyncops_recent_ids
    asyncops list -o jsonl --limit 20 2>/dev/null | sed -n 's/^.*"id":"\([^"]*\)".*$/\1/p'
end

complete -c asyncops -f
complete -c asyncops -l url -r -d 'Daemon URL'
complete -c asyncops -s o -l output -x -a 'table json jsonl' -d 'Output format'
complete -c asyncops -l json -d 'Same as -o json'
complete -c asyncops -l config -r -F -d 'Configuration file'
complete -c asyncops -l token -x -d 'API token (Authorization: Bearer)'
complete -c asyncops -l cacert -r -F -d 'CA certificate (PEM) for https:// URLs'
complete -c asyncops -l data-dir -x -a '(__fish_complete_directories)' -d 'Data dir'
complete -c asyncops -l help -d 'Show help'
complete -c asyncops -l version -d 'Show version'

complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a up -d 'Run asyncopsd and N workers'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a submit -d 'Submit a command'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a get -d 'Show one operation'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a retry -d 'Run a finished command again'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a list -d 'List operations'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a watch -d 'Follow one operation'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a tail -d 'Follow every operation'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a cancel -d 'Cancel operations, by ids or filters'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a forget -d 'Forget finished operations'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a help -d 'Show the help of a command'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a workers -d 'List live workers'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a stats -d 'Counts, backlog and rates'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a store -d 'Work on the store file'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a token -d 'Manage API tokens'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a keygen -d 'Print a CURVE key pair'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a config -d 'Effective configuration'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a version -d 'Print the version'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a daemon -d 'Run asyncopsd'
complete -c asyncops -n "not __fish_seen_subcommand_from $commands" -a worker -d 'Run asyncops-worker'

complete -c asyncops -n "__fish_seen_subcommand_from get watch forget history retry" -a '(__asyncops_recent_ids)' -d 'Operation'
complete -c asyncops -n "__fish_seen_subcommand_from cancel" -a '(__asyncops_unfinished_ids)' -d 'Unfinished operation'
complete -c asyncops -n "__fish_seen_subcommand_from cancel" -l state -x -a 'pending processing' -d 'State'
complete -c asyncops -n "__fish_seen_subcommand_from cancel" -l name -x -d 'Command name'
complete -c asyncops -n "__fish_seen_subcommand_from cancel" -l older-than -x -d 'Age, e.g. 10m'
complete -c asyncops -n "__fish_seen_subcommand_from cancel forget" -s y -l yes -d 'No confirmation'
complete -c asyncops -n "__fish_seen_subcommand_from help" -a "$commands"
complete -c asyncops -n "__fish_seen_subcommand_from help" -l man -x -a 'asyncops asyncopsd asyncops-worker asyncops.conf asyncops-routes' -d 'Show a man page'
complete -c asyncops -n "__fish_seen_subcommand_from list" -l all -d 'Follow every page'
complete -c asyncops -n "__fish_seen_subcommand_from watch submit retry" -l timeout -x -d 'Seconds'
complete -c asyncops -n "__fish_seen_subcommand_from list tail store" -l state -x -a "$states" -d 'State'
complete -c asyncops -n "__fish_seen_subcommand_from list tail store" -l name -x -d 'Command name'
complete -c asyncops -n "__fish_seen_subcommand_from list store" -l limit -x -d 'How many'
complete -c asyncops -n "__fish_seen_subcommand_from list store" -l since -x -d 'Duration (list) or RFC 3339 time'
complete -c asyncops -n "__fish_seen_subcommand_from list" -l cursor -x -d 'Cursor'
complete -c asyncops -n "__fish_seen_subcommand_from list" -l until -x -d 'Duration or RFC 3339 time'
complete -c asyncops -n "__fish_seen_subcommand_from list" -l code -x -d 'Code, e.g. email_in_use'
complete -c asyncops -n "__fish_seen_subcommand_from list cancel" -l owner -x -d 'Principal (admin)'
complete -c asyncops -n "__fish_seen_subcommand_from list cancel" -l resource -x -a '/users/' -d 'Resource path'
complete -c asyncops -n "__fish_seen_subcommand_from submit; and not __fish_seen_subcommand_from POST PUT PATCH DELETE" -a 'POST PUT PATCH DELETE'
complete -c asyncops -n "__fish_seen_subcommand_from submit; and __fish_seen_subcommand_from POST PUT PATCH DELETE" -a '/users /users/'
complete -c asyncops -n "__fish_seen_subcommand_from submit" -s d -l data -x -d 'JSON body, @file or @-'
complete -c asyncops -n "__fish_seen_subcommand_from submit retry" -s w -l wait -d 'Wait for the end'
complete -c asyncops -n "__fish_seen_subcommand_from submit" -l idempotency-key -x -d 'Idempotency key'
complete -c asyncops -n "__fish_seen_subcommand_from up stats store" -l data-dir -x -a '(__fish_complete_directories)' -d 'Data dir'
complete -c asyncops -n "__fish_seen_subcommand_from up" -l listen -x -d 'HOST:PORT'
complete -c asyncops -n "__fish_seen_subcommand_from up" -l workers -x -d 'Number of workers'
complete -c asyncops -n "__fish_seen_subcommand_from up" -l service -x -d 'Service'
complete -c asyncops -n "__fish_seen_subcommand_from up" -l sync -x -a 'normal full' -d 'Durability'
complete -c asyncops -n "__fish_seen_subcommand_from up" -l routes -r -F -d 'Route table'
complete -c asyncops -n "__fish_seen_subcommand_from config" -l daemon -d 'What asyncopsd would use'
complete -c asyncops -n "__fish_seen_subcommand_from store; and not __fish_seen_subcommand_from info ops history vacuum export check prune" -a 'info ops history vacuum export check prune'
complete -c asyncops -n "__fish_seen_subcommand_from prune" -l older-than -x -d 'Age, e.g. 7d'
complete -c asyncops -n "__fish_seen_subcommand_from token; and not __fish_seen_subcommand_from add list revoke" -a 'add list revoke'
complete -c asyncops -n "__fish_seen_subcommand_from token" -l tokens -r -F -d 'Tokens file'
complete -c asyncops -n "__fish_seen_subcommand_from token" -l data-dir -x -a '(__fish_complete_directories)' -d 'Data dir'
complete -c asyncops -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from add" -l principal -x -d 'Who the token stands for'
complete -c asyncops -n "__fish_seen_subcommand_from token; and __fish_seen_subcommand_from add" -l role -x -a 'submitter reader admin' -d 'Role'
