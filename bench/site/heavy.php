<?php
// The isolation case's slow endpoint: half a second in a worker (waiting, not computing: it saturates the pool, not the CPU).
usleep(500000);
echo "heavy";
