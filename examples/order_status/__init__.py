"""Order status: a business action answering "我的订单 A123456 到哪了" from the company's order API."""
