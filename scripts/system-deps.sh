#!/usr/bin/env bash
# Install the Debian/Ubuntu/Raspberry Pi OS packages companion needs, if missing.
#   scripts/system-deps.sh runtime   PortAudio (sound devices), SpeexDSP (echo cancellation)
#   scripts/system-deps.sh test      + PulseAudio null sinks for the real-audio test, systemd-analyze,
#                                    flite/espeak-ng test voices, chromium for the review-page browser test
#   scripts/system-deps.sh xtts      + ffmpeg (Coqui TTS audio decoding)
set -euo pipefail

want=(libportaudio2 libspeexdsp1)
for group in "$@"; do
  case "$group" in
    runtime) ;;
    test) want+=(pulseaudio pulseaudio-utils alsa-utils libasound2-plugins systemd flite espeak-ng chromium iproute2) ;;  # iproute2: the zeroconf test's private network namespace
    xtts) want+=(ffmpeg) ;;
    *) echo "system-deps: unknown group '$group' (runtime, test, xtts)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian-style system; install these yourself: ${want[*]}" >&2
  exit 0
fi

# compilers for llama-cpp-python (built from source), and venv support, only if absent
command -v c++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || want+=(build-essential)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || want+=(python3-venv)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "system-deps: need root to install: ${missing[*]} (run: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
