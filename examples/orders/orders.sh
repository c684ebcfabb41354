#!/bin/sh
# An asyncops exec handler (docs/protocol.md, "Services without C++").
# stdin: the command document. Exit 0 with the order as JSON on stdout:
# completed. Exit 3 with {"code","message"}: rejected. Exit 75: try again
# later. Anything else: a failed attempt (stderr is the message).
#
# One effect per request: asyncops never runs a command again once its
# outcome is recorded, but a handler killed half-way is run again, so the
# effect itself is keyed by ASYNCOPS_REQUEST_ID (a file per order here,
# written once, by rename).
set -eu
cmd=$(cat)
dir=${ORDERS_DIR:-orders.d}
mkdir -p "$dir"
# The order's id: params.id, made by asyncopsd for POST /orders.
id=$(printf '%s' "$cmd" | sed -n 's/.*"params":{"id":"\([^"]*\)"}.*/\1/p')
field() { printf '%s' "$cmd" | sed -n "s/.*\"payload\":{[^}]*\"$1\":\\(\"[^\"]*\"\\|[0-9-]*\\).*/\\1/p"; }

case "$ASYNCOPS_COMMAND" in
place_order)
  item=$(field item)
  quantity=$(field quantity)
  if [ "$quantity" -le 0 ] 2>/dev/null || [ -z "$quantity" ]; then
    echo '{"code": "bad_quantity", "message": "quantity must be 1 or more"}'
    exit 3
  fi
  if [ "$item" = '"nothing"' ]; then
    echo '{"code": "out_of_stock", "message": "we have no nothing"}'
    exit 3
  fi
  order="{\"id\": \"$id\", \"item\": $item, \"quantity\": $quantity, \"request\": \"$ASYNCOPS_REQUEST_ID\"}"
  if [ ! -e "$dir/$id.json" ]; then
    printf '%s\n' "$order" > "$dir/.$id.$ASYNCOPS_REQUEST_ID"
    mv "$dir/.$id.$ASYNCOPS_REQUEST_ID" "$dir/$id.json"
  fi
  cat "$dir/$id.json"
  ;;
cancel_order)
  if [ ! -e "$dir/$id.json" ]; then
    echo "{\"code\": \"order_not_found\", \"message\": \"no order $id\"}"
    exit 3
  fi
  rm -f "$dir/$id.json"
  echo '{"deleted": true}'
  ;;
*)
  echo "orders.sh: no such command: $ASYNCOPS_COMMAND" >&2
  exit 2
  ;;
esac
