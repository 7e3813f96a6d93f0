<?php
// A form with a file: PHP parses the multipart body into $_POST and $_FILES; the answer proves the file arrived whole.
$f = $_FILES['file'] ?? null;
header('Content-Type: application/json');
echo json_encode([
    'title' => $_POST['title'] ?? null,
    'name' => $f['name'] ?? null,
    'size' => $f['size'] ?? null,
    'md5' => $f !== null && $f['error'] === UPLOAD_ERR_OK ? md5_file($f['tmp_name']) : null,
]);
