from app.app import main

main()
