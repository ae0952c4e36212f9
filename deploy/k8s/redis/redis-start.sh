#!/bin/sh
# Starts one node of roomcast-redis: as a replica of the primary the sentinels name, or, when no
# sentinel answers yet (the first start), as the primary if it is roomcast-redis-0.
set -eu
. /etc/redis/config-lib.sh
require_passwords REDIS_DEFAULT_PASSWORD REDIS_GATEWAY_PASSWORD REDIS_ROOM_SERVICE_PASSWORD

domain="roomcast-redis.$POD_NAMESPACE.svc"
self="$POD_NAME.$domain"

render /etc/redis/users.acl > /run/redis/users.acl

# The primary: as the sentinels name it; else (no sentinel up) a node that says it is one; else, on
# a first start, roomcast-redis-0. Never make this node a second primary beside a live one.
primary=$(timeout 5 redis-cli -h roomcast-redis-sentinel -p 26379 --raw SENTINEL get-master-addr-by-name roomcast 2>/dev/null | head -n 1 || true)
if [ -z "$primary" ]; then
  for i in 0 1 2; do  # the StatefulSet's replicas
    node="roomcast-redis-$i.$domain"
    [ "$node" = "$self" ] && continue
    if timeout 5 redis-cli -h "$node" --raw ROLE 2>/dev/null | head -n 1 | grep -qx master; then primary="$node"; break; fi
  done
fi
if [ -z "$primary" ]; then
  if [ "${POD_NAME##*-}" = 0 ]; then primary="$self"; else primary="roomcast-redis-0.$domain"; fi
fi
echo "starting $self; primary: $primary"

{
  cat /etc/redis/redis.conf
  echo "aclfile /run/redis/users.acl"
  echo "masterauth \"$REDIS_DEFAULT_PASSWORD\""
  # Sentinel and the clients reach the nodes by these stable names, not by pod IPs that change.
  echo "replica-announce-ip $self"
  if [ "$primary" != "$self" ]; then echo "replicaof $primary 6379"; fi
} > /run/redis/redis.conf
exec redis-server /run/redis/redis.conf
