#!/bin/bash
# test-fault-matrix.sh over IPv6 (2001:2::1 -> 2001:2::2).
LAB_TEST_FAMILY=6 LAB_TEST_NAME=test-fault-matrix6.sh exec bash "$(dirname -- "$0")/test-fault-matrix.sh"
