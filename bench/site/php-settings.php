<?php
// The bench compares this across php-fpm and php-cgi: every php.ini setting, and whether opcache is really on.
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
echo json_encode(['ini' => ini_get_all(null, false), 'opcache_enabled' => is_array($status) && $status['opcache_enabled']]);
