<?php
// The overload case: 20 ms per request, so 4 workers take about 200 requests per second.
usleep(20000);
echo "slow";
