from wizesync.cli import main

main()
