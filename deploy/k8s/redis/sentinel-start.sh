#!/bin/sh
# Starts one sentinel of roomcast-redis-sentinel, watching the primary the other sentinels name, or
# roomcast-redis-0 when none answers yet (the first start).
set -eu
. /etc/redis/config-lib.sh
require_passwords REDIS_DEFAULT_PASSWORD

self="$POD_NAME.roomcast-redis-sentinel.$POD_NAMESPACE.svc"
# The primary: as the other sentinels name it; else the node that says it is one (after a failover it
# is not roomcast-redis-0, and watching a replica as the primary would invite a second primary);
# else, on a first start, roomcast-redis-0.
primary=$(timeout 5 redis-cli -h roomcast-redis-sentinel -p 26379 --raw SENTINEL get-master-addr-by-name roomcast 2>/dev/null | head -n 1 || true)
until [ -n "$primary" ]; do
  for i in 0 1 2; do  # the Redis StatefulSet's replicas
    node="roomcast-redis-$i.roomcast-redis.$POD_NAMESPACE.svc"
    role=$(timeout 5 redis-cli -h "$node" --raw ROLE 2>/dev/null | head -n 1 || true)
    if [ "$role" = master ]; then primary="$node"; break; fi
  done
  # Sentinel refuses a monitor line whose host name does not resolve yet: wait for a primary to answer.
  [ -n "$primary" ] || { echo "waiting for a Redis primary"; sleep 2; }
done

{
  echo "port 26379"
  echo "dir /run/sentinel"
  echo "sentinel resolve-hostnames yes"
  echo "sentinel announce-hostnames yes"
  echo "sentinel announce-ip $self"
  # Quorum 2 of 3: one sentinel alone never declares the primary dead.
  echo "sentinel monitor roomcast $primary 6379 2"
  echo "sentinel auth-user roomcast default"
  echo "sentinel auth-pass roomcast \"$REDIS_DEFAULT_PASSWORD\""
  echo "sentinel down-after-milliseconds roomcast 5000"
  echo "sentinel failover-timeout roomcast 60000"
  echo "sentinel parallel-syncs roomcast 1"
  echo "sentinel sentinel-user admin"
  echo "sentinel sentinel-pass \"$REDIS_DEFAULT_PASSWORD\""
  render /etc/redis/sentinel-users.acl
} > /run/sentinel/sentinel.conf
exec redis-server /run/sentinel/sentinel.conf --sentinel
