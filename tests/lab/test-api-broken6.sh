#!/bin/bash
# test-api-broken.sh over IPv6 (2001:2::1 -> 2001:2::2).
LAB_TEST_FAMILY=6 LAB_TEST_NAME=test-api-broken6.sh exec bash "$(dirname -- "$0")/test-api-broken.sh"
