<?php
declare(strict_types=1);

// A tiny JSON endpoint. The counter lives in APCu, which is shared by the workers of one pool.
$counter = null;
if (function_exists('apcu_enabled') && apcu_enabled()) {
    $hits = apcu_inc('phpgate-example:hits', 1, $ok);
    $counter = $ok ? $hits : null;
}

header('Content-Type: application/json');
header('Cache-Control: no-store');
echo json_encode([
    'time' => (new DateTimeImmutable())->format(DATE_RFC3339_EXTENDED),
    'method' => $_SERVER['REQUEST_METHOD'] ?? 'GET',
    'query' => (object) $_GET,
    'pid' => getmypid(),
    'counter' => $counter,
], JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
