#!/bin/bash
# test-lab-ipv6.sh: test-lab-rtt.sh over IPv6 (2001:2::1 -> 2001:2::2).
LAB_TEST_FAMILY=6 LAB_TEST_NAME=test-lab-ipv6.sh exec bash "$(dirname -- "$0")/test-lab-rtt.sh"
