from taskapi.cli import main

main()
