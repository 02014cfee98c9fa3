#!/usr/bin/env bash
# Builds the pyexecd image, pushes it to Artifact Registry and deploys it to Cloud Run
# (execution environment gen2) with deploy/cloudrun/service.yaml. Prints the URL.
#
# Usage: deploy/cloudrun/deploy.sh PROJECT REGION [SERVICE]
#   PROJECT  Google Cloud project id (e.g. my-project)
#   REGION   Cloud Run and Artifact Registry region (e.g. europe-west1)
#   SERVICE  Cloud Run service name (default: pyexecd)
#
# Environment:
#   BUILDER=cloudbuild  build remotely with `gcloud builds submit` (default; needs no local
#                       Docker); BUILDER=docker builds and pushes with a local Docker engine
#   REPOSITORY=pyexecd  Artifact Registry repository (created if missing)
#   TAG                 image tag (default: the git commit, else a UTC timestamp)
#   ALLOW_UNAUTHENTICATED=1  also grant roles/run.invoker to allUsers. Off by default:
#                       anyone who can call /execute runs code on your instances; with
#                       the default, callers need an identity token (see the README).
#
# Needs: gcloud (authenticated: gcloud auth login), and docker for BUILDER=docker.
set -euo pipefail

usage() {
        sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}
die() {
        echo "deploy: $*" >&2
        exit 1
}

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
        usage
fi
PROJECT=$1
REGION=$2
SERVICE=${3:-pyexecd}
BUILDER=${BUILDER:-cloudbuild}
REPOSITORY=${REPOSITORY:-pyexecd}

# Project ids: 6-30 lower-case letters, digits, hyphens (domain-scoped ids: example.com:x).
[[ $PROJECT =~ ^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "not a project id: '$PROJECT'"
[[ $REGION =~ ^[a-z]+(-[a-z]+)+[0-9]+$ ]] || die "not a region: '$REGION' (e.g. europe-west1)"
[[ $SERVICE =~ ^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$ ]] ||
        die "not a Cloud Run service name: '$SERVICE' (lower-case letters, digits, hyphens; at most 49)"
[[ $REPOSITORY =~ ^[a-z]([a-z0-9-]*[a-z0-9])?$ ]] || die "not a repository name: '$REPOSITORY'"
case "$BUILDER" in
cloudbuild | docker) ;;
*) die "BUILDER must be cloudbuild or docker, not '$BUILDER'" ;;
esac

command -v gcloud >/dev/null 2>&1 || die "gcloud is not installed (https://cloud.google.com/sdk)"
if [ "$BUILDER" = docker ]; then
        command -v docker >/dev/null 2>&1 || die "BUILDER=docker needs docker"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
[ -f "$ROOT/deploy/Dockerfile" ] || die "no deploy/Dockerfile under $ROOT"
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ -z "${TAG:-}" ]; then
        TAG=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)
fi
IMAGE=$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/$SERVICE:$TAG

gc() { gcloud --project "$PROJECT" --quiet "$@"; }

echo "deploy: enabling the Cloud Run, Artifact Registry and Cloud Build APIs" >&2
gc services enable run.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com

if ! gc artifacts repositories describe "$REPOSITORY" --location "$REGION" >/dev/null 2>&1; then
        echo "deploy: creating Artifact Registry repository $REPOSITORY in $REGION" >&2
        gc artifacts repositories create "$REPOSITORY" --repository-format docker \
                --location "$REGION" --description "pyexecd images"
fi

echo "deploy: building $IMAGE ($BUILDER)" >&2
if [ "$BUILDER" = cloudbuild ]; then
        # The build context is the repository root (files ignored by .gitignore, or by a
        # .gcloudignore if one exists, are not uploaded).
        gc builds submit "$ROOT" --config "$HERE/cloudbuild.yaml" \
                --substitutions "_IMAGE=$IMAGE,_REVISION=$REVISION"
else
        gc auth configure-docker "$REGION-docker.pkg.dev"
        docker build -f "$ROOT/deploy/Dockerfile" --build-arg REVISION="$REVISION" -t "$IMAGE" "$ROOT"
        docker push "$IMAGE"
fi

# service.yaml with the image and the service name filled in; the anchored patterns touch
# only `image: IMAGE` and the service's own `  name: pyexecd`.
manifest=$(mktemp "${TMPDIR:-/tmp}/pyexecd-service.XXXXXX.yaml")
trap 'rm -f "$manifest"' EXIT
sed -e "s|^\([[:space:]]*image:[[:space:]]*\)IMAGE[[:space:]]*$|\1$IMAGE|" \
        -e "s|^  name: pyexecd[[:space:]]*$|  name: $SERVICE|" \
        "$HERE/service.yaml" >"$manifest"
grep -q "image: $IMAGE\$" "$manifest" || die "could not substitute the image into service.yaml"
grep -q "^  name: $SERVICE\$" "$manifest" || die "could not substitute the service name into service.yaml"

echo "deploy: gcloud run services replace ($SERVICE, $REGION)" >&2
gc run services replace "$manifest" --region "$REGION"

if [ "${ALLOW_UNAUTHENTICATED:-0}" = 1 ]; then
        echo "deploy: granting roles/run.invoker to allUsers (ALLOW_UNAUTHENTICATED=1)" >&2
        gc run services add-iam-policy-binding "$SERVICE" --region "$REGION" \
                --member allUsers --role roles/run.invoker
fi

URL=$(gc run services describe "$SERVICE" --region "$REGION" --format 'value(status.url)')
[ -n "$URL" ] || die "the service has no URL (gcloud run services describe $SERVICE)"
echo "deploy: deployed $IMAGE" >&2
echo "$URL"
