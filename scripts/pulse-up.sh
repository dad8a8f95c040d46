#!/usr/bin/env bash
# A private PulseAudio server with two null sinks, for trying companion on a machine
# without a sound card (the same set-up tests/test_real_audio.py uses):
#   sink "mic"      its monitor is the default input: play a recording into it (paplay -d mic REC.wav)
#   sink "speaker"  the default output: record what the robot says (parec -d speaker.monitor)
#
#   eval "$(scripts/pulse-up.sh)"          start it and point this shell at it
#   companion run                         # or: companion bench --device auto
#   scripts/pulse-up.sh stop              stop it
# PULSE_DIR (default /tmp/companion-pulse) holds its socket, cookie and log.
set -euo pipefail

dir="${PULSE_DIR:-/tmp/companion-pulse}"
env_lines() {
  echo "export PULSE_RUNTIME_PATH='$dir/runtime' PULSE_SERVER='unix:$dir/runtime/native'"
  echo "export PULSE_COOKIE='$dir/home/.config/pulse/cookie'"
}

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$dir/runtime/pid" ]; then
    kill "$(cat "$dir/runtime/pid")" 2>/dev/null || true
  fi
  exit 0
fi

for tool in pulseaudio pactl; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "pulse-up: $tool is missing: apt-get install pulseaudio pulseaudio-utils libasound2-plugins" >&2
    exit 1
  }
done
mkdir -p "$dir/runtime" "$dir/home/.config"
chmod 700 "$dir/runtime"
export PULSE_RUNTIME_PATH="$dir/runtime" XDG_RUNTIME_DIR="$dir" HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config"
export PULSE_SERVER="unix:$dir/runtime/native"

if ! pactl info >/dev/null 2>&1; then
  pulseaudio --daemonize=yes --system=false -n --exit-idle-time=-1 --disallow-exit --use-pid-file=yes \
    --log-target="file:$dir/pulse.log" \
    --load="module-native-protocol-unix socket=$dir/runtime/native" \
    --load="module-null-sink sink_name=mic rate=48000" \
    --load="module-null-sink sink_name=speaker rate=48000" >&2
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  pactl info >/dev/null 2>&1 || { echo "pulse-up: the server did not start; see $dir/pulse.log" >&2; exit 1; }
fi
pactl set-default-sink speaker
pactl set-default-source mic.monitor
env_lines
