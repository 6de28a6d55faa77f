# spotgrade bootstrap (body). user_data.py prepends the shebang, the quoted settings (SPOTGRADE_*, named in
# training/cloud/core/env.py), the runner's exit statuses (EXIT_*, from training/cloud/core/lifecycle.py) and
# the function write_run_env.
#
# One boot of one of the run's instances:
#   1. ship this log to CloudWatch Logs (stream SPOTGRADE_BOOT_LOG_STREAM) and fetch the boot kit
#      (training/cloud/core, the stack's code asset) that records a failed boot;
#   2. find Python 3.10+ and check out the deployed commit of repoUrl (gitRef resolved at synth), with the token
#      of repoTokenSecret where one is named;
#   3. the environment: restore the run's packed venv from S3 (a replacement instance), or pip install the GPU
#      requirements and pack the venv to S3 for the replacements (keyed by the requirements and Python);
#   4. run `python -m training.cloud.run`, which owns the attempt, and act on its exit status.
# A failed step is recorded by the boot kit (state FAILED, the step, the log's last lines, a notification) and
# the group's desired capacity goes to 0 before the instance powers off: a broken run never loops or idles at
# GPU prices. An interrupted runner (EXIT_INTERRUPTED) leaves the instance to the platform: the group replaces
# it and the next attempt resumes from the checkpoint.
#
# Two variables move where things are, never what is done; only the rehearsal (tests/rehearsal) sets them:
#   SPOTGRADE_ROOT          a folder standing for / (default: empty, i.e. /)
#   SPOTGRADE_REQUIREMENTS  the requirements file to install (default: training/requirements-gpu.txt)
set -euo pipefail
umask 022

readonly ROOT="${SPOTGRADE_ROOT:-}"
readonly REQUIREMENTS="${SPOTGRADE_REQUIREMENTS:-training/requirements-gpu.txt}"
readonly BOOT_LOG="$ROOT/var/log/spotgrade/bootstrap.log"
readonly SRC_DIR="$ROOT/opt/spotgrade/src"
readonly VENV_DIR="$ROOT/opt/spotgrade/venv"
readonly KIT_DIR="$ROOT/opt/spotgrade/kit"
readonly ENV_FILE="$ROOT/etc/spotgrade/run.env"
readonly CW_CTL="$ROOT/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
readonly CW_CONFIG="$ROOT/opt/aws/amazon-cloudwatch-agent/etc/spotgrade.json"
export AWS_DEFAULT_REGION="$SPOTGRADE_REGION"
export SPOTGRADE_WORK_DIR="$ROOT/var/lib/spotgrade"
BOOT_STARTED=$(date +%s)
STEP="start"
PYTHON=""

mkdir -p "$(dirname "$BOOT_LOG")"
exec > >(tee -a "$BOOT_LOG") 2>&1
readonly LOG_TEE=$!
echo "spotgrade: bootstrap of run $SPOTGRADE_RUN_ID starting $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# Every line so far in $BOOT_LOG before the script ends or the log is shipped: this script's end of the pipe
# closes, so the tee copies what is left and ends (stopped after 5 s, should a process left running still hold
# the pipe); later lines go straight to the log, so once is enough. Without it, the last lines could miss the log.
flush_log() {
  [ -z "${LOG_FLUSHED:-}" ] || return 0
  LOG_FLUSHED=1
  exec >/dev/null 2>&1
  { sleep 5; kill "$LOG_TEE"; } &
  wait "$LOG_TEE" || true
  kill "$!" || true
  exec >>"$BOOT_LOG" 2>&1
}

# The boot kit records what the runner could not (see training/cloud/core/boot_report.py); it also sets the
# group's capacity to 0 when the run has ended. Without the kit, scale to 0 directly. It runs from the kit's
# folder, so `training` is the kit's package even after `cd "$SRC_DIR"` (the clone has one too).
report() {
  (cd "$KIT_DIR" && PYTHONPATH="$KIT_DIR" "${PYTHON:-python3}" -m training.cloud.core.boot_report \
    --bucket "$SPOTGRADE_BUCKET" --run-id "$SPOTGRADE_RUN_ID" --asg-name "$SPOTGRADE_ASG_NAME" \
    --topic-arn "$SPOTGRADE_TOPIC_ARN" --max-attempts "$SPOTGRADE_MAX_ATTEMPTS" \
    "$@" --log "$BOOT_LOG" --boot-started "$BOOT_STARTED")
}

release() {
  aws autoscaling set-desired-capacity --auto-scaling-group-name "$SPOTGRADE_ASG_NAME" --desired-capacity 0 \
    || echo "spotgrade: could not set the desired capacity of $SPOTGRADE_ASG_NAME to 0; the watchdog will"
}

power_off() {
  echo "spotgrade: powering off $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  flush_log
  if [ -x "$CW_CTL" ]; then
    "$CW_CTL" -a stop >/dev/null 2>&1 || true  # stopping the agent ships the lines it still holds
  fi
  shutdown -h now
}

# shellcheck disable=SC2329  # called by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT
  if [ "$rc" -ne 0 ]; then
    echo "spotgrade: boot step '$STEP' failed with exit status $rc"
    report boot-failed --step "$STEP" --exit-status "$rc" || release
    power_off
  fi
  flush_log
  exit "$rc"
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

# Ship this log to CloudWatch Logs, where `python -m training logs` reads it. The runner writes its own streams.
ship_logs() {
  if [ ! -x "$CW_CTL" ]; then
    install_packages amazon-cloudwatch-agent || { echo "spotgrade: no CloudWatch agent; log stays local"; return 0; }
  fi
  mkdir -p "$(dirname "$CW_CONFIG")"
  cat > "$CW_CONFIG" <<EOF
{"agent": {"run_as_user": "root"}, "logs": {"force_flush_interval": 5, "logs_collected": {"files": {"collect_list": [
  {"file_path": "$BOOT_LOG", "log_group_name": "$SPOTGRADE_LOG_GROUP",
   "log_stream_name": "$SPOTGRADE_BOOT_LOG_STREAM", "retention_in_days": -1}
]}}}}
EOF
  "$CW_CTL" -a fetch-config -m ec2 -s -c "file:$CW_CONFIG" || echo "spotgrade: CloudWatch agent did not start"
}

fetch_boot_kit() {
  mkdir -p "$KIT_DIR"
  if aws s3 cp --quiet "$SPOTGRADE_BOOT_KIT_URI" "$KIT_DIR/kit.zip" && (cd "$KIT_DIR" && python3 -m zipfile -e kit.zip .); then
    echo "spotgrade: boot kit ready"
  else
    echo "spotgrade: could not fetch the boot kit; a failed boot will only set the capacity to 0"
  fi
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

# git fetch, never prompting. Where repoTokenSecret names a secret (a private repository), git gets the token from
# a credential helper when the server asks for one: the helper runs `aws secretsmanager get-secret-value` and hands
# the token to git on git's pipe (printf is the shell's builtin), so the token is never an argument, an environment
# variable, a log line or a file. `credential.helper=` first empties the list of helpers, so no configured one
# (e.g. `store`) keeps the token on disk; the remote URL stays credential-free. The helper's shell gets the
# secret's NAME as REPO_TOKEN_SECRET (the header's variable is readonly here and not exported).
# shellcheck disable=SC2016  # the helper's $-expressions are its own shell's, not this one's
readonly TOKEN_HELPER='!f() { set +x; [ "$1" = get ] || exit 0; token=$(aws secretsmanager get-secret-value --secret-id "$REPO_TOKEN_SECRET" --query SecretString --output text </dev/null) || exit 1; [ -n "$token" ] || exit 1; printf "username=x-access-token\npassword=%s\n" "$token"; }; f'
git_fetch() {
  if [ -n "$SPOTGRADE_REPO_TOKEN_SECRET" ]; then
    GIT_TERMINAL_PROMPT=0 REPO_TOKEN_SECRET="$SPOTGRADE_REPO_TOKEN_SECRET" \
      git -C "$SRC_DIR" -c credential.helper= -c "credential.helper=$TOKEN_HELPER" fetch "$@"
  else
    GIT_TERMINAL_PROMPT=0 git -C "$SRC_DIR" fetch "$@"
  fi
}

# Check out exactly the commit deployed (SPOTGRADE_GIT_COMMIT: gitRef resolved at synth), on every attempt, so a
# replacement runs the code the first attempt ran whatever the branch holds by then. A shallow fetch of that one
# commit first (servers that allow fetching a commit by id: GitHub, GitLab, git's own with
# uploadpack.allowReachableSHA1InWant); the fallback fetches every branch and tag and finds it there. Unresolved
# at synth: gitRef as it is now (branch, tag or commit), and the log says so.
clone() {
  local want="$SPOTGRADE_GIT_COMMIT" commit="" candidate head
  if [ -z "$want" ]; then
    want=$SPOTGRADE_GIT_REF
    echo "spotgrade: gitRef '$SPOTGRADE_GIT_REF' was not resolved to a commit at synth; checking out what it names now (a replacement may run other code)"
  fi
  rm -rf "$SRC_DIR"
  git init -q "$SRC_DIR"
  git -C "$SRC_DIR" remote add origin "$SPOTGRADE_REPO_URL"
  if [ -n "$SPOTGRADE_REPO_TOKEN_SECRET" ]; then
    echo "spotgrade: git reads the repository token from secret $SPOTGRADE_REPO_TOKEN_SECRET when the server asks"
  fi
  if git_fetch -q --depth 1 origin "$want"; then
    commit=FETCH_HEAD
  else
    git_fetch -q --tags origin '+refs/heads/*:refs/remotes/origin/*'
    for candidate in "$want" "origin/$want"; do
      if git -C "$SRC_DIR" rev-parse -q --verify "$candidate^{commit}" >/dev/null; then
        commit=$candidate
        break
      fi
    done
  fi
  if [ -z "$commit" ] && [ -n "$SPOTGRADE_GIT_COMMIT" ]; then
    echo "error: commit $SPOTGRADE_GIT_COMMIT (gitRef '$SPOTGRADE_GIT_REF' when deployed) is on no branch or tag of $SPOTGRADE_REPO_URL any more (rewritten history?): push it back, or redeploy" >&2
    return 1
  elif [ -z "$commit" ]; then
    echo "error: gitRef '$SPOTGRADE_GIT_REF' is no branch, tag or commit of $SPOTGRADE_REPO_URL: push it, or redeploy with -c gitRef=..." >&2
    return 1
  fi
  git -C "$SRC_DIR" checkout -q --detach "$commit"
  head=$(git -C "$SRC_DIR" rev-parse HEAD)
  if [ -n "$SPOTGRADE_GIT_COMMIT" ] && [ "$head" != "$SPOTGRADE_GIT_COMMIT" ]; then
    echo "error: checked out $head, not the deployed commit $SPOTGRADE_GIT_COMMIT" >&2
    return 1
  fi
  echo "spotgrade: $SPOTGRADE_REPO_URL at $SPOTGRADE_GIT_REF = $head${SPOTGRADE_GIT_COMMIT:+ (the deployed commit)}"
}

# The venv: the run's packed environment when an earlier attempt left one, else pip install and pack it.
# The pack is keyed by the requirement files, the Python version and the machine, and lives in the run's
# prefix (it expires with the checkpoints). The cache never fails a boot: any trouble falls back to pip.
setup_environment() {
  local requirements="$REQUIREMENTS" key pack started=$SECONDS
  case "$requirements" in /*) ;; *) requirements="$SRC_DIR/$requirements" ;; esac
  key=$( { cat "$SRC_DIR"/training/requirements*.txt "$requirements"; "$PYTHON" --version; uname -m; } \
         | sha256sum | cut -c1-16)
  pack="${SPOTGRADE_ENV_URI}${key}.tar.zst"
  command -v zstd >/dev/null 2>&1 || install_packages zstd || echo "spotgrade: no zstd: the environment is not packed"
  if command -v zstd >/dev/null 2>&1 && aws s3 ls "$pack" >/dev/null 2>&1; then
    mkdir -p "$(dirname "$VENV_DIR")"
    if aws s3 cp --quiet "$pack" - | zstd -d -q | tar -C "$(dirname "$VENV_DIR")" -xf - &&
       "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1; then
      echo "spotgrade: environment restored from $pack in $((SECONDS - started)) s"
      return 0
    fi
    echo "spotgrade: could not restore $pack; installing instead"
    rm -rf "$VENV_DIR"
  fi
  "$PYTHON" -m venv "$VENV_DIR"
  "$VENV_DIR/bin/python" -m pip install -q --upgrade pip
  "$VENV_DIR/bin/python" -m pip install -q -r "$requirements"
  echo "spotgrade: environment installed from the package index in $((SECONDS - started)) s"
  if command -v zstd >/dev/null 2>&1; then
    started=$SECONDS
    if tar -C "$(dirname "$VENV_DIR")" -cf - "$(basename "$VENV_DIR")" | zstd -q -T0 -3 | aws s3 cp --quiet - "$pack"; then
      echo "spotgrade: environment packed to $pack in $((SECONDS - started)) s"
    else
      echo "spotgrade: could not pack the environment (replacements will install it again)"
    fi
  fi
}

STEP="log shipping"
ship_logs
STEP="boot kit"
fetch_boot_kit
STEP="repoUrl"
if [ -z "$SPOTGRADE_REPO_URL" ]; then
  echo "spotgrade: no repoUrl was given at synth; redeploy with -c repoUrl=https://host/owner/repo.git" >&2
  exit 2
fi
STEP="settings"
write_run_env
STEP="python"
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
STEP="clone"
clone
STEP="pip install"
setup_environment

STEP="runner"
echo "spotgrade: starting the runner"
cd "$SRC_DIR"
set +e
"$VENV_DIR/bin/python" -m training.cloud.run --env-file "$ENV_FILE"
status=$?
set -e
trap - EXIT
echo "spotgrade: runner exited with status $status $(date -u +%Y-%m-%dT%H:%M:%SZ)"
case "$status" in
  "$EXIT_INTERRUPTED")
    echo "spotgrade: interrupted; the checkpoint is in S3 and the group replaces this instance"
    ;;
  "$EXIT_SUCCEEDED" | "$EXIT_FAILED" | "$EXIT_STOPPED" | "$EXIT_RETRY")
    power_off  # recorded by the runner, which also set the capacity to 0 where the run ended
    ;;
  *)
    report runner-exited --exit-status "$status" || release
    power_off
    ;;
esac
flush_log
exit 0
