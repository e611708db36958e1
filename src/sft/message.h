// One turn of a conversation, as chat templates and instruction data see it.
#pragma once
#include <string>
#include <vector>

namespace mindllm::sft {

struct Message {
  std::string role;  // system | user | assistant (| tool for templates)
  std::string content;
};

using Conversation = std::vector<Message>;

}  // namespace mindllm::sft
