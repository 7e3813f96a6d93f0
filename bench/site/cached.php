<?php
// The response-cache case: the realistic page, under a path both servers cache (nginx fastcgi_cache, phpgate cache.rules).
require __DIR__ . '/realistic.php';
