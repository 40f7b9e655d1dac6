#!/usr/bin/env bash
# Install the Custos agent on a Raspberry Pi running Raspberry Pi OS (Bookworm).
# Usage, from a checkout of this repository on the Pi:
#     sudo deploy/install-agent.sh interrogation     # or: waiting
# Then edit /etc/custos/agent.toml (device id, site, room, broker, pins), check it with
#     custos-agent check-config /etc/custos/agent.toml
# and start it with
#     sudo systemctl enable --now custos-agent
set -euo pipefail
profile="${1:-interrogation}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo)" >&2; exit 1; }

apt-get update -qq
# picamera2 and libcamera come from Raspberry Pi OS, not from PyPI: the virtualenv sees them
# through --system-site-packages.
apt-get install -y -qq python3-venv python3-picamera2 python3-lgpio libportaudio2 ffmpeg chrony

id custos >/dev/null 2>&1 || useradd --system --home /var/lib/custos-agent --shell /usr/sbin/nologin custos
usermod -aG gpio,video,audio custos

mkdir -p /opt/custos
python3 -m venv --system-site-packages /opt/custos/.venv
/opt/custos/.venv/bin/pip install --quiet "$root[pi]"

install -d -o root -g custos -m 0750 /etc/custos
if [ ! -f /etc/custos/agent.toml ]; then
    install -o root -g custos -m 0640 "$root/firmware_config/profiles/$profile.toml" /etc/custos/agent.toml
    echo "wrote /etc/custos/agent.toml from the $profile profile: edit it now"
fi
install -m 0644 "$root/deploy/systemd/custos-agent.service" /etc/systemd/system/custos-agent.service
systemctl daemon-reload
/opt/custos/.venv/bin/custos-agent check-config /etc/custos/agent.toml || true
echo "next: edit /etc/custos/agent.toml, then: systemctl enable --now custos-agent"
