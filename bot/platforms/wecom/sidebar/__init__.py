"""The member card in WeCom\x27s chat toolbar (聊天工具栏): see routes.py."""
