<?php
// An API endpoint: decode a JSON order, total its lines, answer JSON.
$order = json_decode(file_get_contents('php://input'), true, 16, JSON_THROW_ON_ERROR);
$lines = [];
$total = 0.0;
foreach ($order['items'] as $item) {
    $sum = round($item['qty'] * $item['price'], 2);
    $total += $sum;
    $lines[] = ['sku' => $item['sku'], 'sum' => $sum];
}
header('Content-Type: application/json');
echo json_encode(['order' => $order['id'], 'customer' => $order['customer']['email'], 'lines' => $lines, 'total' => round($total, 2)]);
