# spotgrade bootstrap (body). user_data.py prepends the shebang and the quoted settings
# (SPOTGRADE_REPO_URL, SPOTGRADE_GIT_REF, SPOTGRADE_ASG_NAME, SPOTGRADE_LOG_GROUP, SPOTGRADE_REGION)
# and the function write_run_env (writes /etc/spotgrade/run.env).
#
# Clones the repository at the ref, builds a venv with the GPU requirements and runs the single
# entrypoint `python -m training.cloud.run --env-file /etc/spotgrade/run.env`, which owns the run's
# life cycle (status, checkpoints, interruptions, setting the group's capacity to 0 when done).
# If anything here fails (or the runner exits non-zero), the EXIT trap sets the Auto Scaling group's
# desired capacity to 0 and powers off, so a broken run never loops or idles at GPU prices.
set -euo pipefail
umask 022

readonly BOOT_LOG=/var/log/spotgrade/bootstrap.log
readonly SRC_DIR=/opt/spotgrade/src
readonly VENV_DIR=/opt/spotgrade/venv
readonly ENV_FILE=/etc/spotgrade/run.env
readonly CW_CONFIG=/opt/aws/amazon-cloudwatch-agent/etc/spotgrade.json
export AWS_DEFAULT_REGION="$SPOTGRADE_REGION"

mkdir -p "$(dirname "$BOOT_LOG")"
exec > >(tee -a "$BOOT_LOG") 2>&1
echo "spotgrade: bootstrap starting $(date -u +%Y-%m-%dT%H:%M:%SZ)"

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "spotgrade: failed with exit status $rc; setting desired capacity of $SPOTGRADE_ASG_NAME to 0 and powering off"
    aws autoscaling set-desired-capacity --auto-scaling-group-name "$SPOTGRADE_ASG_NAME" \
      --desired-capacity 0 || echo "spotgrade: could not set the desired capacity to 0"
    sleep 30  # let the CloudWatch agent ship the last lines
    shutdown -h now
  fi
}
trap on_exit EXIT

install_packages() {
  if command -v dnf >/dev/null 2>&1; then
    dnf install -y -q "$@"
  elif command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  else
    echo "spotgrade: no dnf or apt-get to install $*" >&2
    return 1
  fi
}

# Ship this log to CloudWatch Logs (stream <instance-id>/bootstrap). The runner writes its own streams.
ship_logs() {
  local ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
  if [ ! -x "$ctl" ]; then
    install_packages amazon-cloudwatch-agent || { echo "spotgrade: no CloudWatch agent; log stays local"; return 0; }
  fi
  mkdir -p "$(dirname "$CW_CONFIG")"
  cat > "$CW_CONFIG" <<EOF
{"logs": {"logs_collected": {"files": {"collect_list": [
  {"file_path": "$BOOT_LOG", "log_group_name": "$SPOTGRADE_LOG_GROUP",
   "log_stream_name": "{instance_id}/bootstrap", "retention_in_days": -1}
]}}}}
EOF
  "$ctl" -a fetch-config -m ec2 -s -c "file:$CW_CONFIG" || echo "spotgrade: CloudWatch agent did not start"
}

# The first python3 that is 3.10 or newer and can make a venv with pip (the Deep Learning AMI ships
# python3.12 beside the system python3.9).
pick_python() {
  local candidate
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

ship_logs
if [ -z "$SPOTGRADE_REPO_URL" ]; then
  echo "spotgrade: no repoUrl was given at synth; redeploy with -c repoUrl=https://host/owner/repo.git" >&2
  exit 2
fi
write_run_env
command -v git >/dev/null 2>&1 || install_packages git
if ! PYTHON=$(pick_python); then
  if command -v dnf >/dev/null 2>&1; then
    install_packages python3.12 python3.12-pip
  else
    install_packages python3 python3-venv
  fi
  PYTHON=$(pick_python)
fi
echo "spotgrade: using $PYTHON ($("$PYTHON" --version))"

# Clone exactly the ref (branch, tag or commit): shallow fetch first, full fetch as the fallback.
rm -rf "$SRC_DIR"
git init -q "$SRC_DIR"
git -C "$SRC_DIR" remote add origin "$SPOTGRADE_REPO_URL"
if git -C "$SRC_DIR" fetch -q --depth 1 origin "$SPOTGRADE_GIT_REF"; then
  git -C "$SRC_DIR" checkout -q --detach FETCH_HEAD
else
  git -C "$SRC_DIR" fetch -q --tags origin '+refs/heads/*:refs/remotes/origin/*'
  git -C "$SRC_DIR" checkout -q --detach "$SPOTGRADE_GIT_REF"
fi
echo "spotgrade: $SPOTGRADE_REPO_URL at $SPOTGRADE_GIT_REF = $(git -C "$SRC_DIR" rev-parse HEAD)"

"$PYTHON" -m venv "$VENV_DIR"
"$VENV_DIR/bin/python" -m pip install -q --upgrade pip
"$VENV_DIR/bin/python" -m pip install -q -r "$SRC_DIR/training/requirements-gpu.txt"

echo "spotgrade: starting the runner"
cd "$SRC_DIR"
"$VENV_DIR/bin/python" -m training.cloud.run --env-file "$ENV_FILE"
echo "spotgrade: runner finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
