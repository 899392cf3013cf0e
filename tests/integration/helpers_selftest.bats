#!/usr/bin/env bats
# The test helpers themselves: stop_all must stop what the tests started and nothing else, even
# when a recorded pid has since been reused by another process (a long fault run restarts
# members a hundred times, and once its stop_all SIGKILLed an unrelated process that way).

load helpers

teardown() {
  [ -n "${OTHER:-}" ] && kill "$OTHER" 2>/dev/null
  stop_all
}

@test "stop_all stops the members it started" {
  start_server
  pid="$(cat "$ZN_STATE_DIR/m1/pid")"
  pid_alive "$pid"
  stop_all
  run pid_alive "$pid"
  [ "$status" -ne 0 ]
}

@test "stop_all spares a recorded pid that now belongs to another process" {
  start_server
  sleep 300 3>&- &
  OTHER=$!
  # the pid recorded with another start time: what a reused pid looks like
  echo "$OTHER 1" >> "$ZN_STATE_DIR/all_pids"
  stop_all
  pid_alive "$OTHER"
}

@test "free_port never hands out one port twice in a test, though each call is a subshell" {
  # 16 ports to draw from, 12 drawn the way the tests draw them: the old list in a shell
  # variable forgot each port as its subshell ended, and collisions here were near certain.
  ZN_PORT_MIN=44000 ZN_PORT_MAX=44016
  local ports=() i
  for i in $(seq 12); do ports+=("$(free_port)"); done
  [ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" -eq 12 ] ||
    { echo "ports handed out twice: ${ports[*]}"; return 1; }
}
