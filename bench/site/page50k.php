<?php
// The compression case: a prebuilt ~50 KB HTML page (page50k.html, written by the bench) sent through PHP.
header('Content-Type: text/html; charset=utf-8');
readfile(__DIR__ . '/page50k.html');
