#!/bin/bash
# Path loss under the majority strategy: with the witness deciding, an initiator writing
# round robin through both nodes of an HA pair, retrying as multipath does, survives the
# kill -9 of node A (the primary: B serves alone once the witness grants it) and A's
# return with a resync while the writes go on: no write fails after retries, no
# read-back is stale, every acknowledged write reads back through each node, the
# replicas agree.  Prints the path-loss line with the longest stall.
. "$(dirname "$0")/../lib/twinsand.sh"
. "$TOP/tests/lib/ha.sh"
. "$TOP/tests/lib/path-loss.sh"

HA_WITNESS=yes path_loss_scenario A
