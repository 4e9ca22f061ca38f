DEFINE sensor = '3';
